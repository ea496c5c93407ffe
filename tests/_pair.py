"""In-memory back-to-back wiring of a DeviceUplink and a CloudUplink."""

from __future__ import annotations

from uplink62676 import events as ev
from uplink62676.uplink import CloudUplink, DeviceUplink


def pump(
    device: DeviceUplink, cloud: CloudUplink, now: float = 0.0
) -> tuple[list[ev.Event], list[ev.Event]]:
    """Move octets both ways until both are quiet; return (device events, cloud events)."""
    dev_events: list[ev.Event] = []
    cloud_events: list[ev.Event] = []
    for _ in range(10_000):
        to_cloud = device.data_to_send()
        if to_cloud:
            cloud_events += cloud.receive_data(to_cloud, now)
        to_device = cloud.data_to_send()
        if to_device:
            dev_events += device.receive_data(to_device, now)
        if not to_cloud and not to_device:
            return dev_events, cloud_events
    raise AssertionError("the pair never went quiet")


def connected_pair(
    now: float = 0.0, *, device: DeviceUplink | None = None, cloud: CloudUplink | None = None
) -> tuple[DeviceUplink, CloudUplink]:
    device = device or DeviceUplink("https://cloud.example.com/uplink")
    cloud = cloud or CloudUplink(now=now)
    device.start(now)
    cloud.receive_data(device.data_to_send(), now)
    cloud.accept(now)
    pump(device, cloud, now)
    assert cloud.connected
    return device, cloud


def of(events: list[ev.Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]
