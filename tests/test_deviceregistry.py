"""The cloud's device registry, sans-I/O: newest uplink wins, listing by ID, JSON view."""

from __future__ import annotations

import time

import pytest

from uplink62676.deviceregistry import DeviceInfo, DeviceRegistry, InMemoryDeviceRegistry


def info(device_id: str, peer: str = "10.0.0.1:1", since: float = 1_700_000_000.0) -> DeviceInfo:
    return DeviceInfo(device_id, since, peer, "mTLS")


def test_register_lookup_unregister() -> None:
    reg: DeviceRegistry[object] = InMemoryDeviceRegistry()
    a = object()
    assert reg.register(info("cam-1"), a) == ()
    assert reg.lookup("cam-1") is a and reg.info("cam-1") == info("cam-1")
    assert reg.lookup("cam-2") is None and reg.info("cam-2") is None
    assert reg.unregister("cam-1", a) is True
    assert reg.lookup("cam-1") is None and reg.devices() == []
    assert reg.unregister("cam-1", a) is False


def test_newer_uplink_replaces_older_which_the_caller_closes() -> None:
    """A device reconnecting while its old uplink lingers is listed once, on the new uplink."""
    reg: InMemoryDeviceRegistry[str] = InMemoryDeviceRegistry()
    old, new = "conn-old", "conn-new"
    reg.register(info("cam-1", "10.0.0.1:1"), old)
    assert reg.register(info("cam-1", "10.0.0.1:2"), new) == (old,)
    assert reg.lookup("cam-1") == new and len(reg) == 1
    # The old connection goes away later: it must not take the new entry with it.
    assert reg.unregister("cam-1", old) is False
    assert reg.lookup("cam-1") == new and reg.info("cam-1").peer == "10.0.0.1:2"  # type: ignore[union-attr]


def test_registering_the_same_handle_again_closes_nothing() -> None:
    reg: InMemoryDeviceRegistry[str] = InMemoryDeviceRegistry()
    reg.register(info("cam-1"), "c")
    assert reg.register(info("cam-1", "10.0.0.1:9"), "c") == ()
    assert reg.info("cam-1").peer == "10.0.0.1:9"  # type: ignore[union-attr]


def test_devices_sorted_by_id() -> None:
    reg: InMemoryDeviceRegistry[int] = InMemoryDeviceRegistry()
    for n, name in enumerate(("cam-3", "cam-10", "a", "cam-1")):
        reg.register(info(name), n)
    assert [d.device_id for d in reg.devices()] == ["a", "cam-1", "cam-10", "cam-3"]


@pytest.mark.parametrize("since", [0.0, 1_700_000_000.999, 1_234_567_890.5, 4_102_444_800.0])
def test_to_json_matches_the_former_time_strftime_output(since: float) -> None:
    """GET /devices output stays byte-identical after moving off the ``time`` module."""
    got = DeviceInfo("cam-1", since, "10.0.0.1:1", "AccessToken", "h2c-reverse/websocket").to_json()
    assert got == {
        "id": "cam-1",
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
        "peer": "10.0.0.1:1",
        "auth": "AccessToken",
        "protocol": "h2c-reverse/websocket",
    }


def test_parallel_uplinks_coexist_and_a_reconnect_replaces_its_predecessor() -> None:
    """uplink.md 9.3 (parallel uplinks): two uplinks of one device (other upgrade paths or
    mechanisms) both stay; a reconnect of one of them replaces only its predecessor; lookups
    go to the newest; the device is gone only when its last uplink is."""
    reg: InMemoryDeviceRegistry[str] = InMemoryDeviceRegistry()
    a = DeviceInfo("cam", 1.0, "p1", "mTLS", "h2c-reverse", "/uplink/a")
    b = DeviceInfo("cam", 2.0, "p2", "mTLS", "h2c-reverse/websocket", "/uplink/a")
    c = DeviceInfo("cam", 3.0, "p3", "mTLS", "h2c-reverse", "/uplink/c")
    assert reg.register(a, "A") == ()
    assert reg.register(b, "B") == ()  # same path, other mechanism: parallel
    assert reg.register(c, "C") == ()
    assert reg.handles("cam") == ["C", "B", "A"] and reg.lookup("cam") == "C"
    again = DeviceInfo("cam", 4.0, "p4", "mTLS", "h2c-reverse", "/uplink/a")
    assert reg.register(again, "A2") == ("A",)  # same uplink reconnected: close the old one
    assert reg.handles("cam") == ["A2", "C", "B"]
    assert [u.peer for u in reg.uplinks("cam")] == ["p4", "p3", "p2"]
    assert reg.unregister("cam", "A") is False  # already replaced
    assert reg.unregister("cam", "A2") is False and reg.unregister("cam", "C") is False
    assert reg.devices() == [b]
    assert reg.unregister("cam", "B") is True and reg.devices() == []
