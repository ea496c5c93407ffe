"""Fuzz target: 20-digit device-ID parsing, lenient and strict (tokens.md section 5).

Every input must give a value or an InvalidDeviceIdError; values must round-trip
and every table lookup must succeed.
"""

from __future__ import annotations

from _common import main

from uplink62676.deviceid import DeviceId


def target(data: bytes) -> None:
    strict = data[:1] == b"!"
    text = data[1:].decode("utf-8", "replace") if strict else data.decode("utf-8", "replace")
    device = DeviceId.parse(text, strict=strict)
    assert str(device) == text
    assert DeviceId.parse(device.value) == device
    assert device.zone + device.agency + device.device_type + device.serial == text
    device.describe()


if __name__ == "__main__":
    main(target)
