"""The RTSP gateway of one node reaching a camera whose device is held by another node.

Redis, HAProxy and two nodes (CLI subprocesses, each with ``--rtsp-listen``); the
GStreamer camera and a CLI device connected to node 1 only.  ffmpeg plays from node 2:
over RTSP/TCP at its gateway, and over its own RTSP-over-HTTP channel at node 2's
front door.  Node 2 opens the tunnel through node 1 as the HTTP pair (GET + POST,
forwarded over the internal HTTP/2 link; RFC 8441 CONNECT is offered only by local
devices).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from _cluster_util import Cluster, needs_servers
from _video_util import Proc, ffmpeg_frames, require_tools, start_camera

pytestmark = [needs_servers, pytest.mark.video]

CMD = [sys.executable, "-m", "uplink62676"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_tools()
    camera, camera_port = start_camera()
    c = Cluster(tmp_path_factory.mktemp("cluster-rtsp"), n=2, refresh=1.0, rtsp=True)
    device = None
    try:
        c.start()
        device = Proc([*CMD, "device", "--remote",
                       f"http://127.0.0.1:{c.nodes[0].listen}/cam-1", "--plaintext",
                       "--rtsp", f"rtsp://127.0.0.1:{camera_port}"])
        listing = c.wait_listed(1, timeout=20)
        assert listing[0]["id"] == "cam-1" and listing[0]["node"] == "n1"
        yield c
    finally:
        if device is not None:
            device.stop()
        c.stop()
        camera.terminate()
        camera.wait(10)


def test_ffmpeg_at_the_gateway_of_the_node_without_the_device(cluster: Cluster) -> None:
    n2 = cluster.nodes[1]
    assert ffmpeg_frames(f"rtsp://127.0.0.1:{n2.rtsp}/devices/cam-1/stream") >= 100
    assert "http tunnel to cam-1/stream" in n2.log.read_text()


def test_ffmpeg_rtsp_over_http_at_the_other_nodes_front_door(cluster: Cluster) -> None:
    n2 = cluster.nodes[1]
    assert ffmpeg_frames(f"rtsp://{n2.host}:{n2.expose}/devices/cam-1/stream",
                         http=True) >= 50
