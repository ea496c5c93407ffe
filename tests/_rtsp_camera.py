"""A real RTSP camera for the video tests: GStreamer's RTSP server on loopback.

Run under Debian's ``/usr/bin/python3`` (the ``gi`` bindings are not on PyPI):
``/usr/bin/python3 tests/_rtsp_camera.py [PORT [KBPS [PATTERN [MOUNTS]]]]``.  Serves ``/stream``
(and every path of the comma-separated MOUNTS, the same stream), a live
``videotestsrc ! x264enc ! rtph264pay`` (25 fps, a keyframe every 25 frames),
and prints ``PORT <n>`` on stdout once it accepts connections.
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = ("( videotestsrc is-live=true pattern={pattern} ! video/x-raw,width=320,height=240,"
            "framerate=25/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 "
            "bitrate={kbps} ! rtph264pay name=pay0 pt=96 config-interval=1 )")


def main() -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(sys.argv[1] if len(sys.argv) > 1 else "0")
    factory = GstRtspServer.RTSPMediaFactory()
    kbps = sys.argv[2] if len(sys.argv) > 2 else "800"
    pattern = sys.argv[3] if len(sys.argv) > 3 else "ball"
    factory.set_launch(PIPELINE.format(kbps=int(kbps), pattern=pattern))
    factory.set_shared(True)
    mounts = ["/stream", *(m for m in (sys.argv[4] if len(sys.argv) > 4 else "").split(",") if m)]
    for mount in mounts:
        server.get_mount_points().add_factory(mount, factory)
    server.attach(None)
    print(f"PORT {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
