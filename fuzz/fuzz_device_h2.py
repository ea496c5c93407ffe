"""Fuzz the post-upgrade octets into the device end (preface check, scanner, h2)."""

from __future__ import annotations

from _common import main

from uplink62676 import events as ev
from uplink62676.uplink import DeviceUplink

_101 = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n"
_PREFACE = bytes.fromhex(
    "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a000006040000000000000200000000"
)


def target(data: bytes) -> None:
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    device.data_to_send()
    # Half the inputs get a valid preface first, so the fuzzer reaches the frames.
    prefix = _PREFACE if data[:1] and data[0] & 1 else b""
    now = 0.0
    for i, chunk in enumerate((_101 + prefix + data[1:]).split(b"\xff\xfe")):
        now += 0.5
        for e in device.receive_data(chunk or b"\x00", now):
            if isinstance(e, ev.RequestReceived) and i % 2 == 0:
                try:
                    device.send_response(e.stream_id, 200, body=b"ok")
                except Exception as exc:  # only our errors may escape
                    from uplink62676.errors import UplinkError

                    if not isinstance(exc, UplinkError):
                        raise
        device.data_to_send()
        device.handle_timeout(now)


if __name__ == "__main__":
    main(target)
