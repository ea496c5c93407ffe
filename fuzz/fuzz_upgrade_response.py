"""Fuzz the device end's reading of the cloud's answer (the 101 parser) and what follows."""

from __future__ import annotations

from _common import main

from uplink62676.uplink import DeviceUplink

_101 = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n"


def target(data: bytes) -> None:
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    device.data_to_send()
    device.receive_data(data or b"H", 0.0)
    device.data_to_send()
    device.handle_timeout(31.0)


if __name__ == "__main__":
    main(target)
