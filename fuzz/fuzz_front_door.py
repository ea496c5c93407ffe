"""Fuzz the cloud front door's inputs: the device path split and the token file parser."""

from __future__ import annotations

from _common import main

from uplink62676.aio.expose import split_device_path
from uplink62676.cli import parse_tokens


def target(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    device_id, rest = split_device_path("/devices/" + text)
    assert rest.startswith("/") and "/" not in device_id and "?" not in device_id
    tokens = parse_tokens(text)
    assert all(t and d and not any(c.isspace() for c in t + d) for t, d in tokens.items())


if __name__ == "__main__":
    main(target)
