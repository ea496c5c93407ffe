"""The front door's own bound on requests in flight per client address, across its connections
(issue 10 item 5): HTTP/1.1 503 + Retry-After, HTTP/2 REFUSED_STREAM, slots given back."""

from __future__ import annotations

import h2.events
import pytest

from test_frontdoor import GET, POST, _h2_client, _h11_answers, _request, of
from uplink62676 import events as ev
from uplink62676.errors import ConfigurationError
from uplink62676.frontdoor import (
    ClientLimits,
    FrontDoorConnection,
    FrontDoorSettings,
    PeerInfo,
    RequestRefused,
    RequestRouted,
    unknown_device,
)
from uplink62676.tunnel import ErrorCode

PEER = PeerInfo("192.0.2.7", 50000, tls=True, alpn="h2", local_port=8443)


def test_client_limits_count_per_address() -> None:
    limits = ClientLimits(2)
    assert limits.acquire("a") and limits.acquire("a") and not limits.acquire("a")
    assert limits.acquire("b") and limits.in_flight("a") == 2 and len(limits) == 2
    limits.release("a")
    limits.release("a")
    limits.release("b")
    assert len(limits) == 0 and limits.in_flight("a") == 0
    with pytest.raises(ConfigurationError):
        ClientLimits(0)
    assert FrontDoorSettings().max_requests_per_client == 128


def test_requests_carry_the_peer() -> None:
    """The hook of client authentication: every request knows its client address and TLS."""
    conn = FrontDoorConnection(peer=PEER)
    (req,) = conn.receive_data(GET, 0.0)
    assert isinstance(req, RequestRouted) and req.peer == PEER and req.scheme == "https"
    (req,) = FrontDoorConnection().receive_data(GET, 0.0)
    assert isinstance(req, RequestRouted) and req.peer is None and req.scheme == "http"


def test_http1_past_the_bound_is_503_with_retry_after() -> None:
    """Two HTTP/1.1 connections of one address share a bound of 1: the second gets 503 and
    keeps its connection; once the first is answered the slot is free again."""
    limits = ClientLimits(1)
    settings = FrontDoorSettings(retry_after=5)
    first = FrontDoorConnection(settings, peer=PEER, limits=limits)
    second = FrontDoorConnection(settings, peer=PEER, limits=limits)
    other = FrontDoorConnection(settings, peer=PeerInfo("192.0.2.8"), limits=limits)
    assert of(first.receive_data(GET, 0.0), RequestRouted)
    assert of(other.receive_data(GET, 0.0), RequestRouted)  # another address: its own count
    events = second.receive_data(POST, 0.0)
    (refused,) = events
    assert isinstance(refused, RequestRefused) and refused.peer == PEER
    out = second.data_to_send()
    assert out.startswith(b"HTTP/1.1 503 ") and b"retry-after: 5\r\n" in out.lower()
    assert not second.closed
    first.answer(1, unknown_device("cam-1"))
    assert limits.in_flight(PEER.address) == 0
    second.handle_timeout(0.0)
    assert of(second.receive_data(GET, 1.0), RequestRouted)
    assert [s for s, _ in _h11_answers(out)] == [503]


def test_http1_slot_given_back_when_the_client_goes_away() -> None:
    limits = ClientLimits(1)
    conn = FrontDoorConnection(peer=PEER, limits=limits)
    conn.receive_data(GET, 0.0)
    assert limits.in_flight(PEER.address) == 1
    conn.receive_data(b"", 1.0)
    assert limits.in_flight(PEER.address) == 0


def test_http2_past_the_bound_is_refused_stream() -> None:
    """HTTP/2: the stream past the bound is reset with REFUSED_STREAM (safe to retry), its body
    is dropped, and slots come back as streams are answered or reset."""
    limits = ClientLimits(2)
    conn = FrontDoorConnection(peer=PEER, limits=limits)
    client = _h2_client()
    conn.receive_data(client.data_to_send(), 0.0)
    client.receive_data(conn.data_to_send())
    _request(client, 1)
    _request(client, 3)
    _request(client, 5, method="POST", end=False)
    client.send_data(5, b"body", end_stream=True)
    events = conn.receive_data(client.data_to_send(), 1.0)
    assert [e.stream_id for e in of(events, RequestRouted)] == [1, 3]
    assert [e.stream_id for e in of(events, RequestRefused)] == [5]
    assert not of(events, ev.DataReceived) and not of(events, ev.StreamEnded)
    resets = [e for e in client.receive_data(conn.data_to_send())
              if isinstance(e, h2.events.StreamReset)]
    assert [(r.stream_id, r.error_code) for r in resets] == [(5, ErrorCode.REFUSED_STREAM)]
    conn.answer(1, unknown_device("cam-1"))
    conn.reset_stream(3)
    assert limits.in_flight(PEER.address) == 0
    _request(client, 7)
    assert of(conn.receive_data(client.data_to_send(), 2.0), RequestRouted)
    conn.receive_data(b"", 3.0)  # the client goes away: its open stream gives its slot back
    assert limits.in_flight(PEER.address) == 0
