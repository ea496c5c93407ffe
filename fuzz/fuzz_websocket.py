"""Fuzz WebSocket octets into both ends after the 101 (wsproto framing, then the tunnel).

The first input octet picks the end (device or cloud) and whether a valid
preface frame goes first, so the fuzzer reaches the HTTP/2 layer too; the
rest is cut into reads at ``ff fe``.
"""

from __future__ import annotations

import base64
import contextlib

from _common import main

from uplink62676 import events as ev
from uplink62676.errors import UplinkError
from uplink62676.uplink import CloudUplink, DeviceUplink
from uplink62676.websocket import SeededEntropy, accept_token

_URI = "wss://cloud.example.com/uplink/ws"
_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: h2c-reverse\r\n\r\n"
)
_PREFACE = bytes.fromhex(
    "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a000006040000000000000200000000"
)
_SERVER_PREFACE = bytes.fromhex("00000c040000000000000300000010000800000001")
_MASK = b"\x12\x34\x56\x78"


def _masked(payload: bytes) -> bytes:
    body = bytes(b ^ _MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x82, 0x80 | len(payload)]) + _MASK + body


def _serve(uplink: DeviceUplink, events: list[ev.Event], i: int) -> None:
    for e in events:
        if isinstance(e, ev.RequestReceived) and i % 2 == 0:
            with contextlib.suppress(UplinkError):
                uplink.send_response(e.stream_id, 200, body=b"ok")


def _device(data: bytes, preface: bool) -> None:
    device = DeviceUplink(_URI, entropy=SeededEntropy(1))
    device.start(0.0)
    device.data_to_send()
    key = base64.b64encode(SeededEntropy(1)(16))  # the device draws its key first
    head = _101 % accept_token(key).encode()
    prefix = bytes([0x82, len(_PREFACE)]) + _PREFACE if preface else b""
    now = 0.0
    for i, chunk in enumerate((head + prefix + data).split(b"\xff\xfe")):
        now += 0.5
        _serve(device, device.receive_data(chunk or b"\x00", now), i)
        device.data_to_send()
        device.handle_timeout(now)


def _cloud(data: bytes, preface: bool) -> None:
    device = DeviceUplink(_URI, entropy=SeededEntropy(2))
    device.start(0.0)
    cloud = CloudUplink()
    cloud.receive_data(device.data_to_send(), 0.0)
    cloud.accept(0.0)
    cloud.data_to_send()
    prefix = _masked(_SERVER_PREFACE) if preface else b""
    now = 0.0
    for i, chunk in enumerate((prefix + data).split(b"\xff\xfe")):
        now += 0.5
        cloud.receive_data(chunk or b"\x00", now)
        if i == 1 and cloud.connected:
            with contextlib.suppress(UplinkError):
                cloud.send_request("GET", "/", end_stream=True)
        cloud.data_to_send()
        cloud.handle_timeout(now)


def target(data: bytes) -> None:
    mode = data[0] if data else 0
    (_cloud if mode & 2 else _device)(data[1:], bool(mode & 1))


if __name__ == "__main__":
    main(target)
