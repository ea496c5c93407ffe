"""Fuzz target: the RTSP stream reader and the gateway's rewriting (MED-12, MED-R14).

Any input, split in two at a point the input chooses, must give messages and
frame runs or a RemoteProtocolError; rewriting what was read never raises.
"""

from __future__ import annotations

from _common import main

from uplink62676.rtsp import RtspReader, RtspResponse, StreamRewriter, UrlMap, rewrite_response

URLS = UrlMap("rtsp://gw/devices/cam-1", "rtsp://cam-1")


def target(data: bytes) -> None:
    cut = data[0] % (len(data) or 1) if data else 0
    reader = RtspReader(max_head=2048, max_body=4096)
    for item in reader.feed(data[:cut]) + reader.feed(data[cut:]):
        if isinstance(item, RtspResponse):
            rewrite_response(item, URLS)
    StreamRewriter(URLS, to_device=True).feed(data)


if __name__ == "__main__":
    main(target)
