"""Fuzz the post-upgrade octets into the cloud end (server preface check, responses)."""

from __future__ import annotations

from _common import main

from uplink62676.uplink import CloudUplink

_REQ = b"GET /u HTTP/1.1\r\nHost: c\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n"
_SETTINGS = bytes.fromhex("00000c040000000000000300000010000800000001")


def target(data: bytes) -> None:
    cloud = CloudUplink()
    cloud.receive_data(_REQ, 0.0)
    cloud.accept(0.0)
    cloud.data_to_send()
    prefix = _SETTINGS if data[:1] and data[0] & 1 else b""
    stream = prefix + data[1:]
    if prefix:
        cloud.receive_data(prefix, 0.1)
        for _ in range(3):
            cloud.send_request("POST", "/x", body=b"hello")
        stream = data[1:]
    for chunk in stream.split(b"\xff\xfe"):
        cloud.receive_data(chunk or b"\x00", 0.2)
        cloud.data_to_send()


if __name__ == "__main__":
    main(target)
