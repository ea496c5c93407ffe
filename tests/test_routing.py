"""Routing a front-door request by virtual host or by a device's own port, and the device-ID
labels behind virtual hosts (UPL-59, UPL-R21: stock clients take a host and a port)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uplink62676.errors import ConfigurationError
from uplink62676.frontdoor import (
    FrontDoorConnection,
    HostRouter,
    PathRouter,
    PortRouter,
    RequestRouted,
    Route,
    RouteKind,
    device_from_label,
    device_label,
    split_authority,
)

LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


@pytest.mark.parametrize(("device_id", "label"), [
    ("cam-1", "cam-1"),
    ("32010001071321008015", "32010001071321008015"),
    ("CAM_1", "x--inau2xzr"),
    ("x--abc", "x--paws2ylcmm"),  # looks encoded: encoded itself
    ("xn--abc", "x--pbxc2llbmjrq"),  # reserved ??-- labels are encoded
    ("-a", "x--fvqq"),
    ("a" * 63, "a" * 63),
])
def test_device_label_table(device_id: str, label: str) -> None:
    assert device_label(device_id) == label
    assert device_from_label(label) == device_id
    assert device_from_label(label.upper()) == device_id


def test_too_long_for_a_label() -> None:
    """37 UTF-8 octets needing encoding still fit in 63 characters; 38 do not."""
    assert len(device_label("A" * 37)) == 63
    with pytest.raises(ConfigurationError, match="reachable by path only"):
        device_label("A" * 38)
    with pytest.raises(ConfigurationError):
        device_label("a" * 64)
    with pytest.raises(ConfigurationError):
        device_label("")


@given(st.text(min_size=1, max_size=40))
def test_label_round_trip(device_id: str) -> None:
    """Every ID with a label maps back to itself, through a DNS label, in any letter case."""
    try:
        label = device_label(device_id)
    except ConfigurationError:
        assert len(device_id.encode()) > 37
        return
    assert LABEL.match(label) and label == label.lower()
    assert device_from_label(label) == device_id
    assert device_from_label(label.upper()) == device_id


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=70))
def test_a_label_names_at_most_one_id(label: str) -> None:
    """No two IDs share a label: whatever a label decodes to encodes back to it."""
    device_id = device_from_label(label)
    if device_id is not None:
        assert device_label(device_id) == label


@pytest.mark.parametrize(("authority", "split"), [
    ("Cam-1.Example.:8080", ("cam-1.example", 8080)),
    ("example", ("example", None)),
    ("[::1]:80", ("[::1]", 80)),
    ("[::1]", ("[::1]", None)),
    ("host:x", ("host", None)),
])
def test_split_authority(authority: str, split: tuple[str, int | None]) -> None:
    assert split_authority(authority) == split


def test_host_router() -> None:
    """<label>.DOMAIN[:port] goes to the device, whole path as is; the bare domain and other
    hosts fall back to the path router (GET /devices and /devices/<id>/ still work)."""
    router = HostRouter("Cloud.Example")
    assert router("POST", "/onvif/device_service", "cam-1.cloud.example:8080") == \
        Route.device("cam-1", "/onvif/device_service")
    assert router("GET", "/x?y", "X--INAU2XZR.CLOUD.EXAMPLE.") == Route.device("CAM_1", "/x?y")
    assert router("GET", "/devices", "cloud.example").kind is RouteKind.LISTING
    assert router("GET", "/devices/cam-2/a", "other.host:1") == \
        Route.device("cam-2", "/a", "/devices/cam-2")
    assert router("GET", "/devices/cam-2/a", None) == PathRouter()("GET", "/devices/cam-2/a", None)
    assert router("GET", "/a", "a.b.cloud.example").kind is RouteKind.LOCAL  # two labels: fallback
    bad = router("GET", "/a", "x--1.cloud.example")
    assert bad.kind is RouteKind.LOCAL and bad.answer is not None and bad.answer.status == 404
    absolute = router("GET", "http://cam-1.cloud.example/a", "cam-1.cloud.example")
    assert absolute.answer is not None and absolute.answer.status == 400
    with pytest.raises(ConfigurationError):
        HostRouter("")


def test_port_router_and_connection() -> None:
    """On a device's own port every request goes to that device; the connection passes Host."""
    conn = FrontDoorConnection(router=PortRouter("cam-9"))
    (req,) = conn.receive_data(b"GET /devices HTTP/1.1\r\nhost: h:7001\r\n\r\n", 0.0)
    assert isinstance(req, RequestRouted) and req.route == Route.device("cam-9", "/devices")
    conn = FrontDoorConnection(router=HostRouter("d.test"))
    (req,) = conn.receive_data(b"GET /onvif/x HTTP/1.1\r\nhost: cam-3.d.test\r\n\r\n", 0.0)
    assert isinstance(req, RequestRouted) and req.route == Route.device("cam-3", "/onvif/x")
