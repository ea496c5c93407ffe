"""Run stock onvif-zeep-async against a camera address; print what it got as one JSON line.

Runs under the python of onvif-zeep-async's own virtual environment (its
top-level ``onvif`` package clashes with onvif-python's), so it imports
nothing from uplink62676.  Usage: ``zeep_async_client.py HOST PORT USER PASSWORD``
(HOST may be ``https://name`` for TLS).  The library is used as shipped; the
one thing this script adds is RFC 6761 name resolution for ``*.localhost``
when the system resolver lacks it (many containers), so virtual hosts work.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import sys

_getaddrinfo = socket.getaddrinfo


def _localhost_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    """``<anything>.localhost`` is loopback (RFC 6761 section 6.3)."""
    if isinstance(host, str) and host.lower().rstrip(".").endswith(".localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _localhost_getaddrinfo


async def main(host: str, port: int, user: str, password: str) -> dict[str, object]:
    from onvif import ONVIFCamera

    out: dict[str, object] = {}
    cam = ONVIFCamera(host, port, user, password, no_cache=True, adjust_time=True)
    try:
        await cam.update_xaddrs()
        out["xaddrs"] = sorted(cam.xaddrs.values())
        devicemgmt = await cam.create_devicemgmt_service()
        info = await devicemgmt.GetDeviceInformation()
        out["manufacturer"] = info.Manufacturer
        out["model"] = info.Model
        media = await cam.create_media_service()
        profiles = await media.GetProfiles()
        out["profiles"] = [p.token for p in profiles]
        uri = await media.GetStreamUri({
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            "ProfileToken": profiles[0].token})
        out["stream_uri"] = uri.Uri
        lost: list[bool] = []
        manager = await cam.create_pullpoint_manager(dt.timedelta(seconds=60),
                                                     lambda: lost.append(True))
        service = manager.get_service()
        out["pullpoint"] = service.xaddr
        topics: list[str] = []
        for _ in range(5):
            messages = await service.PullMessages(
                {"MessageLimit": 100, "Timeout": dt.timedelta(seconds=2)})
            for m in messages.NotificationMessage or []:
                topic = m.Topic._value_1 if m.Topic is not None else ""
                topics.append(str(topic))
            if topics:
                break
        out["topics"] = topics
        await manager.shutdown()
    except Exception as exc:  # report, the test decides
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await cam.close()
    return out


if __name__ == "__main__":
    h, p, u, pw = sys.argv[1:5]
    print(json.dumps(asyncio.run(main(h, int(p), u, pw))))
