"""Media streaming through the uplink: RTSP over HTTP tunnelling and RFC 8441 (uplink.md section 10, transcripts F and G)."""

from __future__ import annotations

import pytest

from _pair import connected_pair, of, pump
from uplink62676 import events as ev
from uplink62676.uplink import CloudUplink, DeviceUplink


def test_cloud_never_dials_the_device() -> None:
    """UPL-1: the device establishes the uplink; the cloud only answers (it has nothing to send first)."""
    cloud = CloudUplink()
    assert cloud.data_to_send() == b""
    assert not hasattr(cloud, "connect")
    assert cloud.start(0.0) == [] and cloud.data_to_send() == b""  # start() only arms a timer
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    assert device.data_to_send().startswith(b"GET /uplink HTTP/1.1\r\n")


def test_rtsp_over_http_tunnel_transcript_g() -> None:
    """UPL-53, UPL-54, UPL-55, UPL-58, UPL-60, UPL-R28: transcript G -- a GET channel whose response has
    no content-length and never ends, and a POST channel announcing 2147483647 octets that the
    device does not reset for lack of octets, ended by the cloud with RST_STREAM(CANCEL)."""
    device, cloud = connected_pair()
    get = cloud.send_request("GET", "/rtsp-tunnel", [("x-sessioncookie", "4ZxQ9rT2"),
                                                     ("accept", "application/x-rtsp-tunnelled")],
                             end_stream=True)
    post = cloud.send_request("POST", "/rtsp-tunnel", [
        ("x-sessioncookie", "4ZxQ9rT2"), ("content-type", "application/x-rtsp-tunnelled"),
        ("content-length", "2147483647")], end_stream=False)
    assert (get, post) == (1, 3)
    d_events, _ = pump(device, cloud)
    reqs = {r.stream_id: r for r in of(d_events, ev.RequestReceived)}
    assert reqs[post].content_length == 2147483647
    assert (b"x-sessioncookie", b"4ZxQ9rT2") in reqs[get].headers
    device.send_response(get, 200, [("content-type", "application/x-rtsp-tunnelled")])
    _, c_events = pump(device, cloud)
    [resp] = of(c_events, ev.ResponseReceived)
    assert resp.stream_id == get and resp.content_length is None  # UPL-58: no content-length
    rtsp = b"DESCRIBE rtsp://cam/stream RTSP/1.0\r\nCSeq: 2\r\n\r\n"
    import base64

    for t in range(20):  # a long session: commands up, interleaved RTP down (far beyond a window)
        cloud.send_data(post, base64.b64encode(rtsp))
        device.send_data(get, b"$\x00\x05\xdc" + bytes(1500))
        d_events, c_events = pump(device, cloud, float(t))
        assert not of(d_events, ev.StreamReset) and not of(c_events, ev.StreamReset)
    received = sum(len(e.data) for e in of(c_events, ev.DataReceived))
    assert received == 1504
    cloud.reset_stream(post)  # UPL-60: CANCEL, never END_STREAM
    d_events, _ = pump(device, cloud)
    assert of(d_events, ev.StreamReset) == [ev.StreamReset(post, 8, by_peer=True)]
    assert device.open_streams == 1  # the GET channel lives on


def test_post_channel_without_content_length_may_end_normally() -> None:
    """UPL-R28: a POST channel sent without content-length ends with END_STREAM like any body."""
    device, cloud = connected_pair()
    post = cloud.send_request("POST", "/rtsp-tunnel", [("content-type", "application/x-rtsp-tunnelled")],
                              end_stream=False)
    cloud.send_data(post, b"T1BUSU9OUw==", end_stream=True)
    d_events, _ = pump(device, cloud)
    assert of(d_events, ev.StreamEnded) == [ev.StreamEnded(post)]
    assert not of(d_events, ev.StreamReset)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_rfc8441_websocket_connect_transcript_f(scheme: str) -> None:
    """UPL-56, UPL-57, UPL-R20: transcript F -- an extended CONNECT with :protocol websocket after the
    device advertised SETTINGS_ENABLE_CONNECT_PROTOCOL; :scheme http or https both accepted."""
    device, cloud = connected_pair()
    sid = cloud.send_request(
        "CONNECT", "/rtsp-over-websocket",
        [("sec-websocket-version", "13"), ("sec-websocket-protocol", "rtsp.onvif.org")],
        protocol="websocket", scheme=scheme, authority="32010001071321008015", end_stream=False)
    d_events, _ = pump(device, cloud)
    [req] = of(d_events, ev.RequestReceived)
    assert (req.method, req.protocol, req.scheme, req.path) == (
        "CONNECT", "websocket", scheme, "/rtsp-over-websocket")
    device.send_response(sid, 200, [("sec-websocket-protocol", "rtsp.onvif.org")])
    frame = b"\x82\x85abcd" + bytes(a ^ b for a, b in zip(b"hello", b"abcdabcd", strict=False))
    cloud.send_data(sid, frame)  # the cloud is the inner WebSocket client: it masks
    device.send_data(sid, b"\x82\x05world")
    d_events, c_events = pump(device, cloud)
    assert of(c_events, ev.ResponseReceived)[0].status_code == 200
    assert of(d_events, ev.DataReceived)[0].data == frame
    assert of(c_events, ev.DataReceived)[0].data == b"\x82\x05world"


@pytest.mark.parametrize("enabled", [True, False])
def test_cloud_sees_whether_the_device_announced_extended_connect(enabled: bool) -> None:
    """UPL-57: the cloud sends an extended CONNECT only after SETTINGS_ENABLE_CONNECT_PROTOCOL;
    ``peer_enables_connect_protocol`` tells it (the RTSP gateway's choice, MED-R11)."""
    from uplink62676.settings import DeviceSettings

    device = DeviceUplink("https://cloud.example.com/uplink",
                          settings=DeviceSettings(enable_connect_protocol=enabled))
    _, cloud = connected_pair(device=device)
    assert cloud.peer_enables_connect_protocol is enabled
    assert CloudUplink().peer_enables_connect_protocol is False  # no tunnel yet
