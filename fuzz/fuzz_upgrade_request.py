"""Fuzz the cloud end's upgrade-request parser (tolerant head normalisation + h11)."""

from __future__ import annotations

from _common import main

from uplink62676.uplink import CloudUplink


def target(data: bytes) -> None:
    cloud = CloudUplink()
    half = len(data) // 2
    cloud.receive_data(data[:half] or b"G", 0.0)
    cloud.receive_data(data[half:] or b"\n", 0.0)
    if cloud.request is not None and cloud.phase.value == "upgrading":
        cloud.accept(0.0)
    cloud.data_to_send()
    cloud.handle_timeout(100.0)


if __name__ == "__main__":
    main(target)
