"""The device-agent core without I/O: a real CloudUplink on the other side, ``now`` moved by hand
(UPL-4, 41, 45..49, R23; RFC 9113 section 8.1)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs
import pytest

from uplink62676 import events as ev
from uplink62676.agent import (
    CancelHandler,
    CloseTransport,
    Command,
    EndBody,
    FeedBody,
    PingAnswered,
    RequestHead,
    StartHandler,
    UplinkKeeper,
    UplinkSession,
    Wake,
    default_schedule,
)
from uplink62676.handshake import RemoteAddress
from uplink62676.settings import DeviceSettings
from uplink62676.status import Status
from uplink62676.tunnel import ErrorCode
from uplink62676.uplink import CloudUplink

PING, WINDOW_UPDATE, RST_STREAM = 6, 8, 3


@attrs.frozen
class Spec:
    remote_address: str = "http://cloud.test/up"
    insecure_plaintext: bool = True
    user_level: tuple[str, ...] = ("Operator",)
    access_token: str | None = None

    @property
    def address(self) -> RemoteAddress:
        return RemoteAddress.parse(self.remote_address, allow_plaintext=self.insecure_plaintext)

    def token(self) -> str | None:
        return self.access_token


@attrs.frozen
class Resp:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: object = b""


def frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """HTTP/2 frames as ``(type, flags, stream, payload)``."""
    out = []
    while data:
        length = int.from_bytes(data[:3], "big")
        out.append((data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF,
                    data[9:9 + length]))
        data = data[9 + length:]
    return out


class Link:
    """A session and a CloudUplink wired back to back; ``now`` is whatever the test says."""

    def __init__(self, *, high_water: int = 64 * 1024, cloud_manual: bool = False,
                 settings: DeviceSettings | None = None) -> None:
        self.keeper = UplinkKeeper("cam-1", Spec(), default_schedule)
        session, self.commands = self.keeper.begin(settings or DeviceSettings(), 0.0,
                                                   lambda n: b"\x01" * n, high_water)
        assert session is not None
        self.session: UplinkSession = session
        self.cloud = CloudUplink(manual_flow_control=cloud_manual)
        self.cloud_events: list[ev.Event] = []
        self.to_device(0.0)
        assert isinstance(self.cloud_events[-1], ev.UpgradeRequested)
        self.cloud.accept(0.0)
        self.exchange(0.0)
        assert self.keeper.status is Status.CONNECTED

    def to_device(self, now: float) -> bytes:
        """Device octets into the cloud; returns them."""
        data = self.session.data_to_send()
        if data:
            self.cloud_events += self.cloud.receive_data(data, now)
        return data

    def to_cloud_side(self, now: float) -> list[Command]:
        """Cloud octets into the device; returns the device's commands."""
        return self._from_cloud(now)[1]

    def _from_cloud(self, now: float) -> tuple[bytes, list[Command]]:
        data = self.cloud.data_to_send()
        commands = self.session.receive_data(data, now) if data else []
        self.commands += commands
        return data, commands

    def exchange(self, now: float) -> list[Command]:
        """Both ways until quiet."""
        got: list[Command] = []
        for _ in range(50):
            sent = self.to_device(now)
            back, new = self._from_cloud(now)
            got += new
            if not sent and not back:
                break
        return got

    def of(self, kind: type[object]) -> list[object]:
        return [e for e in self.cloud_events if isinstance(e, kind)]


def _kinds(commands: Iterable[Command]) -> list[str]:
    return [type(c).__name__ for c in commands]


# --- liveness ------------------------------------------------------------------------------------


def test_silent_cloud_gets_pings_at_10_and_20_s_and_the_link_is_lost_after_30_s() -> None:
    """UPL-45..49, UPL-R23: the deadlines the core hands out are the PINGs and the 30 s rule."""
    link = Link()
    assert link.session.next_deadline() == 10.0
    assert link.session.handle_timeout(9.99) == []
    assert link.session.data_to_send() == b""

    assert link.session.handle_timeout(10.0) == []
    first = [f for f in frames(link.session.data_to_send()) if f[0] == PING]
    assert [(f[1], f[2], f[3][:4]) for f in first] == [(0, 0, b"UPLK")]
    assert link.session.next_deadline() == 20.0
    link.session.handle_timeout(20.0)
    assert [f[0] for f in frames(link.session.data_to_send())] == [PING]

    assert link.session.next_deadline() == math.nextafter(30.0, math.inf)
    assert link.session.handle_timeout(30.0) == []  # exactly 30 s is not "more than 30 s"
    commands = link.session.handle_timeout(link.session.next_deadline() or 0)
    assert commands == [ev.StatusChanged(Status.OFFLINE, "no traffic for 30 s"),
                        CloseTransport(abort=True)]
    assert link.session.finished and link.session.next_deadline() is None
    assert link.keeper.status is Status.OFFLINE


def test_an_answered_ping_restarts_the_silence_timer() -> None:
    """UPL-46: any octet from the cloud (here its PING ACK) counts as traffic."""
    link = Link()
    link.session.handle_timeout(10.0)
    link.to_device(10.0)  # the PING reaches the cloud, which ACKs it automatically
    assert link.to_cloud_side(10.5) == []
    assert link.session.next_deadline() == 20.5


def test_ping_waiters_by_id_and_their_end() -> None:
    """``ping()`` answers through a PingAnswered command; a pending one ends with the link."""
    link = Link()
    waiter = link.session.ping(5.0)
    link.to_device(5.0)
    answered = link.to_cloud_side(5.25)
    assert answered == [PingAnswered(waiter, answered[0].payload, 0.25)]  # type: ignore[union-attr]
    second = link.session.ping(6.0)
    commands = link.session.connection_lost(6.5, "gone")
    assert commands[0] == ev.StatusChanged(Status.OFFLINE, "gone")
    assert next(c for c in commands if isinstance(c, PingAnswered)).waiter == second
    assert commands[-1] == CloseTransport(abort=False)


def test_closed_before_the_upgrade_answer() -> None:
    keeper = UplinkKeeper("cam-1", Spec(), default_schedule)
    session, _ = keeper.begin(DeviceSettings(), 0.0, lambda n: b"\0" * n, 1024)
    assert session is not None
    commands = session.receive_data(b"", 1.0)
    assert commands[0] == ev.StatusChanged(
        Status.OFFLINE, "connection closed by the cloud before answering the upgrade")


# --- requests ------------------------------------------------------------------------------------


def test_request_with_body_reaches_the_handler_with_user_level_and_acks_only_as_consumed() -> None:
    """UPL-4, UPL-41: head, body and end as commands; the window reopens only on ``consumed``."""
    link = Link()
    body = b"h" * 40_000
    sid = link.cloud.send_request("POST", "/onvif/device_service", body=body)
    commands = link.exchange(1.0)
    start = commands[0]
    assert isinstance(start, StartHandler) and start.user_level == ("Operator",)
    head = RequestHead(start)
    assert (head.method, head.path, head.stream_id) == ("POST", "/onvif/device_service", sid)
    fed = [c for c in commands if isinstance(c, FeedBody)]
    assert b"".join(c.data for c in fed) == body and commands[-1] == EndBody(sid)
    assert link.session.data_to_send() == b""  # nothing acknowledged yet
    for c in fed:
        link.session.consumed(sid, c.flow_controlled_length)
    assert {f[0] for f in frames(link.session.data_to_send())} == {WINDOW_UPDATE}

    link.session.response_ready(sid, Resp(200, (("content-type", "text/plain"),), b"ok"))
    link.exchange(1.1)
    assert [e.status_code for e in link.of(ev.ResponseReceived)] == [200]  # type: ignore[attr-defined]
    assert [e.data for e in link.of(ev.DataReceived)] == [b"ok"]  # type: ignore[attr-defined]
    assert link.of(ev.StreamReset) == []
    assert not link.session.is_live(sid)


def test_request_head_keeps_the_body_it_was_fed() -> None:
    link = Link()
    sid = link.cloud.send_request("POST", "/x", body=b"abc")
    commands = link.exchange(1.0)
    head = RequestHead(commands[0])  # type: ignore[arg-type]
    assert head._take() is None
    for c in commands[1:]:
        head._apply(c)  # type: ignore[arg-type]
    assert head._take() == (b"abc", 3) and head._take() == (b"", 0) and head.at_eof
    head._apply(CancelHandler(sid, 8, True))
    assert head.reset_code == 8


def test_answer_before_the_whole_request_resets_with_no_error() -> None:
    """RFC 9113 section 8.1: the response is complete, the upload is stopped with NO_ERROR."""
    link = Link()
    sid = link.cloud.send_request("POST", "/upload", end_stream=False)
    link.cloud.send_data(sid, b"part")
    link.exchange(1.0)
    link.session.response_ready(sid, Resp(413, (), b"too big"))
    link.exchange(1.1)
    assert [e.data for e in link.of(ev.DataReceived)] == [b"too big"]  # type: ignore[attr-defined]
    resets = link.of(ev.StreamReset)
    assert [(r.stream_id, r.error_code) for r in resets] == [(sid, ErrorCode.NO_ERROR)]  # type: ignore[attr-defined]


def test_early_answer_waits_until_its_body_has_left() -> None:
    """The NO_ERROR reset follows the last queued octet (a reset would discard what is queued)."""
    link = Link(cloud_manual=True)
    sid = link.cloud.send_request("POST", "/upload", end_stream=False)
    link.exchange(1.0)
    link.session.response_ready(sid, Resp(200, (), b"r" * 100_000))  # beyond the 65535 window
    link.exchange(1.1)
    assert link.of(ev.StreamReset) == []
    for e in link.of(ev.DataReceived):
        link.cloud.acknowledge_data(sid, e.flow_controlled_length)  # type: ignore[attr-defined]
    link.exchange(1.2)
    got = sum(len(e.data) for e in link.of(ev.DataReceived))  # type: ignore[attr-defined]
    assert got == 100_000
    assert [r.error_code for r in link.of(ev.StreamReset)] == [ErrorCode.NO_ERROR]  # type: ignore[attr-defined]


def test_handler_failure_answers_500() -> None:
    link = Link()
    sid = link.cloud.send_request("GET", "/boom", body=None)
    link.exchange(1.0)
    link.session.handler_failed(sid, RuntimeError("boom"))
    link.exchange(1.1)
    response = link.of(ev.ResponseReceived)[0]
    assert response.status_code == 500  # type: ignore[attr-defined]
    assert (b"content-type", b"text/plain") in response.headers  # type: ignore[attr-defined]
    assert [e.data for e in link.of(ev.DataReceived)] == [b"handler failed\n"]  # type: ignore[attr-defined]


def test_failure_after_the_head_resets_with_internal_error() -> None:
    link = Link()
    sid = link.cloud.send_request("GET", "/stream", body=None)
    link.exchange(1.0)
    link.session.response_ready(sid, Resp(200, (), iter([b"a"])))
    assert link.session.wants_body(sid)
    link.session.chunk_ready(sid, b"a")
    link.session.handler_failed(sid, RuntimeError("generator died"))
    link.exchange(1.1)
    assert [r.error_code for r in link.of(ev.StreamReset)] == [ErrorCode.INTERNAL_ERROR]  # type: ignore[attr-defined]
    assert link.session.chunk_ready(sid, b"late") == [] and not link.session.wants_body(sid)


def test_invalid_status_from_a_handler_resets_the_stream() -> None:
    link = Link()
    sid = link.cloud.send_request("GET", "/odd", body=None)
    link.exchange(1.0)
    link.session.response_ready(sid, Resp(1000))
    link.exchange(1.1)
    assert [r.error_code for r in link.of(ev.StreamReset)] == [ErrorCode.INTERNAL_ERROR]  # type: ignore[attr-defined]


def test_cloud_reset_cancels_the_handler_and_acknowledges_its_unread_body() -> None:
    link = Link()
    sid = link.cloud.send_request("POST", "/long", end_stream=False)
    link.cloud.send_data(sid, b"x" * 1000)
    link.exchange(1.0)
    link.cloud.reset_stream(sid, ErrorCode.CANCEL)
    commands = link.exchange(1.1)
    assert CancelHandler(sid, ErrorCode.CANCEL, True) in commands
    assert not link.session.is_live(sid)
    assert link.session.response_ready(sid, Resp()) == []  # a late answer goes nowhere
    assert link.session.consumed(sid, 1000) == []


def test_link_end_cancels_every_live_handler() -> None:
    link = Link()
    a = link.cloud.send_request("GET", "/a", body=None)
    b = link.cloud.send_request("GET", "/b", body=None)
    link.exchange(1.0)
    commands = link.session.connection_lost(2.0, "reset by peer")
    assert _kinds(commands) == ["StatusChanged", "CancelHandler", "CancelHandler",
                                "CloseTransport"]
    assert {c.stream_id for c in commands if isinstance(c, CancelHandler)} == {a, b}


def test_back_pressure_pauses_and_wakes_the_producer() -> None:
    """Design 'slow read': at most window + high_water queued; a Wake when the cloud reads."""
    link = Link(high_water=32 * 1024, cloud_manual=True)
    sid = link.cloud.send_request("GET", "/live", body=None)
    link.exchange(1.0)
    link.session.response_ready(sid, Resp(200, (), iter(())))
    produced = 0
    while link.session.may_send_more(sid):
        link.session.chunk_ready(sid, b"v" * 16384)
        produced += 16384
        assert produced < 10_000_000
    assert 32 * 1024 < produced <= 65535 + 32 * 1024 + 16384
    link.exchange(1.1)
    assert not any(isinstance(c, Wake) for c in link.commands)
    for e in link.of(ev.DataReceived):
        link.cloud.acknowledge_data(sid, e.flow_controlled_length)  # type: ignore[attr-defined]
    commands = link.exchange(1.2)
    assert Wake(sid) in commands
    assert link.session.may_send_more(sid)


def test_keeper_reports_each_change_once_and_counts_attempts() -> None:
    keeper = UplinkKeeper("cam-1", Spec(), default_schedule)
    assert keeper.report(Status.OFFLINE, None) == []
    assert keeper.report(Status.OFFLINE, "x") == [ev.StatusChanged(Status.OFFLINE, "x")]
    assert keeper.report(Status.OFFLINE, "x") == []
    assert keeper.next_wait(first=True) == 0.0

    def no_token() -> str:
        raise OSError("token server down")

    failing = UplinkKeeper("cam-1", attrs.evolve(Spec(), access_token=None), default_schedule)
    failing.spec = type("S", (), {"remote_address": "http://c/x", "token": staticmethod(no_token),
                                  "insecure_plaintext": True})()  # type: ignore[assignment]
    session, commands = failing.begin(DeviceSettings(), 0.0, lambda n: b"\0" * n, 1024)
    assert session is None and failing.attempts == 1
    assert commands == [ev.StatusChanged(Status.OFFLINE, "no access token: OSError")]


@pytest.mark.parametrize("kind", [StartHandler, FeedBody, EndBody, CancelHandler, Wake,
                                  PingAnswered, CloseTransport])
def test_commands_are_frozen_values(kind: type) -> None:
    assert attrs.has(kind) and kind.__attrs_attrs__ is not None
    assert "__slots__" in kind.__dict__
