"""Live video through the uplink with real parts (MED-R12..R16, UPL-54..61, transcripts F and G).

The camera is GStreamer's RTSP server (``tests/_rtsp_camera.py``, H.264), the
cloud and the device are the CLI over loopback mTLS, the players are ffmpeg
and GStreamer's ``rtspsrc``.  Missing tools fail these tests (CI installs
them: see ``_video_util.APT``).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from _adapters_util import Pki, make_pki
from _video_util import Stack, ffmpeg_frames, ffmpeg_player, stack

pytestmark = pytest.mark.video


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=["websocket", "http"])
def live(request: pytest.FixtureRequest, pki: Pki) -> Iterator[Stack]:
    """One stack per tunnel kind: RFC 8441 (transcript F) and the HTTP pair (transcript G)."""
    yield from stack(pki, transport=request.param)


@pytest.fixture
def fresh(pki: Pki) -> Iterator[Stack]:
    yield from stack(pki)


def test_ffmpeg_rtsp_tcp_through_the_gateway(live: Stack) -> None:
    """MED-9, MED-11, MED-12, MED-R12, MED-R13: ffmpeg over RTSP/TCP (RTP interleaved) to
    --rtsp-listen decodes 100 frames through
    cloud + uplink (mTLS) + device agent + camera."""
    assert ffmpeg_frames(live.url) >= 100


def test_the_tunnel_kind_is_the_one_asked_for(live: Stack) -> None:
    """UPL-57/MED-R11 (RFC 8441 where the device announces it) or UPL-58 (the HTTP pair); the
    tunnel's path is the camera's path (MED-21); over HTTP/2 the GET and POST are two streams
    of one connection (MED-22) and the device's DATA follows the cloud's windows (MED-23)."""
    ffmpeg_frames(live.url, frames=5)
    transport = live.transport
    live.cloud.wait_line(f"{transport} tunnel to cam-1/stream")
    if transport == "http":
        live.device.wait_line("RTSP tunnel opened (GET")
    else:
        live.device.wait_line("RTSP over WebSocket opened")


def test_ffmpeg_rtsp_over_http_through_the_expose_port(live: Stack) -> None:
    """MED-13, MED-14, MED-15, MED-16, MED-17, MED-R7: a player that tunnels RTSP over HTTP
    itself (ffmpeg -rtsp_transport http)
    reaches the camera through the front door's port."""
    assert ffmpeg_frames(live.http_url, http=True) >= 100
    live.cloud.wait_line("(HTTP): ")


def test_gstreamer_rtspsrc_is_a_second_client(live: Stack) -> None:
    """An independent RTSP client: GStreamer's rtspsrc over TCP gets 100 H.264 buffers."""
    r = subprocess.run(["gst-launch-1.0", "-q", "rtspsrc", f"location={live.url}",
                        "protocols=tcp", "!", "rtph264depay", "!", "h264parse", "!",
                        "fakesink", "num-buffers=100"],
                       capture_output=True, text=True, timeout=40, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_two_players_at_once(live: Stack) -> None:
    """One tunnel per player connection, no sharing (MED-R12)."""
    first = ffmpeg_player(live.url)
    try:
        assert ffmpeg_frames(live.url, frames=50) >= 50
    finally:
        first.kill()
        first.wait()


def test_killed_player_ends_both_channels_within_a_second(live: Stack) -> None:
    """A player that disconnects without TEARDOWN: the tunnel through the uplink ends < 1 s."""
    player = ffmpeg_player(live.url)
    transport = live.transport
    opened = "RTSP tunnel opened" if transport == "http" else "RTSP over WebSocket opened"
    start = time.monotonic()
    live.device.wait_line(opened, after=start)
    time.sleep(1.5)
    killed = time.monotonic()
    player.send_signal(signal.SIGKILL)
    player.wait()
    closed = "RTSP tunnel closed" if transport == "http" else "RTSP over WebSocket closed"
    at = live.device.wait_line(closed, after=killed, timeout=5)
    assert at - killed < 1.0, f"tunnel ended {at - killed:.2f} s after the player died"


def test_teardown_ends_the_tunnel_and_keeps_the_connection(live: Stack) -> None:
    """TEARDOWN: forwarded, answered, then the tunnel ends (< 1 s); the player's TCP stays."""
    with socket.create_connection(("127.0.0.1", live.rtsp), timeout=10) as s:
        reader = s.makefile("rb")

        def ask(text: str) -> dict[str, str]:
            s.sendall(text.encode())
            status = reader.readline().decode()
            headers: dict[str, str] = {}
            while (line := reader.readline().decode().strip()):
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            reader.read(int(headers.get("content-length", "0")))
            headers["status"] = status.split()[1]
            return headers

        url = live.url
        d = ask(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n")
        assert d["status"] == "200" and d["content-base"].startswith(url)
        setup = ask(f"SETUP {d['content-base']}stream=0 RTSP/1.0\r\nCSeq: 2\r\n"
                    "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n")
        assert setup["status"] == "200", setup
        session = setup["session"].split(";")[0]
        sent = time.monotonic()
        teardown = ask(f"TEARDOWN {d['content-base']} RTSP/1.0\r\nCSeq: 3\r\n"
                       f"Session: {session}\r\n\r\n")
        assert teardown["status"] == "200"
        live.cloud.wait_line("tunnel ends (TEARDOWN answered)", after=sent, timeout=2)
        again = ask(f"OPTIONS {url} RTSP/1.0\r\nCSeq: 4\r\n\r\n")
        assert again["status"] == "200"


def test_udp_transport_is_refused(live: Stack) -> None:
    """MED-R13: a UDP Transport is answered 461 Unsupported Transport."""
    with socket.create_connection(("127.0.0.1", live.rtsp), timeout=10) as s:
        s.sendall(f"SETUP {live.url}/stream=0 RTSP/1.0\r\nCSeq: 1\r\n"
                  "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n".encode())
        assert s.recv(200).startswith(b"RTSP/1.0 461")


def test_killed_device_agent_ends_the_player(fresh: Stack) -> None:
    """The uplink drops: its players' sessions end (the player's connection closes)."""
    player = ffmpeg_player(fresh.url)
    fresh.device.wait_line("RTSP over WebSocket opened")
    time.sleep(1.0)
    fresh.device.stop(signal.SIGKILL)
    try:
        player.wait(timeout=10)
    except subprocess.TimeoutExpired:
        player.kill()
        raise AssertionError("the player still runs 10 s after the uplink dropped") from None
    fresh.cloud.wait_line("closing (", timeout=2)


def test_killed_camera_ends_the_player(fresh: Stack) -> None:
    """The camera dies: the device ends the tunnel, the gateway closes the player."""
    player = ffmpeg_player(fresh.url)
    fresh.device.wait_line("RTSP over WebSocket opened")
    time.sleep(1.0)
    fresh.camera.kill()
    try:
        player.wait(timeout=10)
    except subprocess.TimeoutExpired:
        player.kill()
        raise AssertionError("the player still runs 10 s after the camera died") from None
    fresh.device.wait_line("RTSP over WebSocket closed", timeout=2)


@pytest.mark.slow
def test_stalled_player_is_dropped_not_the_uplink(pki: Pki) -> None:
    """MED-R16: a player that stops reading is dropped at the per-session bound; the uplink and
    other players carry on."""
    for s in stack(pki, kbps=6000, pattern="snow", extra=("--rtsp-player-buffer", "262144")):
        with socket.socket() as stalled:
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect(("127.0.0.1", s.rtsp))
            f = stalled.makefile("rb")
            stalled.sendall(f"DESCRIBE {s.url} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += f.read(1)
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            f.read(length)
            stalled.sendall(f"SETUP {s.url}/stream=0 RTSP/1.0\r\nCSeq: 2\r\n"
                            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n".encode())
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += f.read(1)
            session = head.split(b"Session: ")[1].split(b"\r\n")[0].split(b";")[0].decode()
            stalled.sendall(f"PLAY {s.url}/ RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"
                            .encode())
            s.cloud.wait_line("unread; dropping it", timeout=60)
            s.device.wait_line("RTSP over WebSocket closed", timeout=2)
        assert ffmpeg_frames(s.url, frames=25) >= 25  # the uplink is still there


def test_players_authenticate_with_the_front_doors_users(pki: Pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """MED-20, DEV-15..18: with ``--users`` the gateway asks players for RTSP Digest; ffmpeg
    with alice's password decodes frames, without it (or with a wrong one) it is refused."""
    users = tmp_path / "users"
    users.write_text("alice wonder-land cam-*\nbob builder other-*\n")
    users.chmod(0o600)
    for s in stack(pki, extra=("--users", str(users))):
        good = s.url.replace("rtsp://", "rtsp://alice:wonder-land@")
        assert ffmpeg_frames(good, frames=30) >= 30
        for bad in (s.url, s.url.replace("rtsp://", "rtsp://alice:wrong@"),
                    s.url.replace("rtsp://", "rtsp://bob:builder@")):  # bob may not see cam-1
            r = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
                                "-rtsp_transport", "tcp", "-i", bad, "-frames:v", "5", "-f",
                                "null", "-"], capture_output=True, text=True, timeout=40,
                               check=False)
            assert r.returncode != 0, bad
            assert "401" in r.stderr or "404" in r.stderr or "Unauthorized" in r.stderr, r.stderr
