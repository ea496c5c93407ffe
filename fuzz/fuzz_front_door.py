"""Fuzz the cloud front door: a whole client connection (HTTP/1.1 or HTTP/2, split anywhere,
answered as the adapter would), the device path split and the token file parser."""

from __future__ import annotations

from _common import main

from uplink62676 import events as ev
from uplink62676.app.cli import parse_tokens
from uplink62676.frontdoor import (
    FrontDoorConnection,
    FrontDoorSettings,
    RequestRouted,
    split_device_path,
    unknown_device,
)
from uplink62676.tunnel import PREFACE_MAGIC

_SETTINGS = FrontDoorSettings(max_head_size=2048)
# A client preface and a SETTINGS frame, so that HTTP/2 inputs reach the frame layer.
_H2_START = PREFACE_MAGIC + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _connection(data: bytes) -> None:
    if not data:
        return
    mode, data = data[0], data[1:]
    if mode & 1:
        data = _H2_START + data
    conn = FrontDoorConnection(_SETTINGS, now=0.0)
    step = (mode >> 1) % 61 + 1
    now = 0.0
    for i in range(0, len(data), step):
        now += 0.5
        for e in conn.receive_data(data[i:i + step], now):
            if isinstance(e, RequestRouted):
                assert e.route.kind.value in ("device", "listing", "local")
                if e.stream_id % 2 or mode & 4:
                    conn.answer(e.stream_id, unknown_device(e.route.device_id))
                else:
                    conn.send_response(e.stream_id, 200, [(b"content-type", b"text/plain")])
                    conn.send_data(e.stream_id, b"x" * (mode * 40), end_stream=True)
            elif isinstance(e, ev.DataReceived):
                conn.acknowledge_data(e.stream_id, e.flow_controlled_length)
        conn.data_to_send()
        deadline = conn.next_deadline()
        if deadline is not None and deadline <= now + 60:
            conn.handle_timeout(max(deadline, now))
        if conn.closed:
            break
    conn.connection_lost(now + 1)


def target(data: bytes) -> None:
    _connection(data)
    text = data.decode("utf-8", "replace")
    device_id, rest = split_device_path("/devices/" + text)
    assert rest.startswith("/") and "/" not in device_id and "?" not in device_id
    tokens = parse_tokens(text)
    assert all(t and d and not any(c.isspace() for c in t + d) for t, d in tokens.items())


if __name__ == "__main__":
    main(target)
