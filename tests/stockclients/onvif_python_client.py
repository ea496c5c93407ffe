"""Run stock onvif-python (``ONVIFClient``) against a camera address; print one JSON line.

Usage: ``onvif_python_client.py HOST PORT USER PASSWORD [digest] [https]``.
``digest``: HTTP Digest instead of WS-UsernameToken; ``https``: TLS with
certificate verification (trust comes from ``REQUESTS_CA_BUNDLE``).  As for
the onvif-zeep-async script, ``*.localhost`` resolves to loopback (RFC 6761)
when the system resolver lacks it; nothing else is changed.
"""

from __future__ import annotations

import json
import socket
import sys

_getaddrinfo = socket.getaddrinfo


def _localhost_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if isinstance(host, str) and host.lower().rstrip(".").endswith(".localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _localhost_getaddrinfo


def main(host: str, port: int, user: str, password: str, digest: bool,
         https: bool) -> dict[str, object]:
    from onvif import CacheMode, ONVIFClient

    out: dict[str, object] = {}
    try:
        client = ONVIFClient(host, port, user, password, http_digest=digest, use_https=https,
                             verify_ssl=https, cache=CacheMode.NONE)
        info = client.devicemgmt().GetDeviceInformation()
        out["manufacturer"] = info.Manufacturer
        services = client.devicemgmt().GetServices(IncludeCapability=False)
        out["xaddrs"] = sorted(s.XAddr for s in services)
        media = client.media()
        profiles = media.GetProfiles()
        out["profiles"] = [p.token for p in profiles]
        uri = media.GetStreamUri(
            StreamSetup={"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            ProfileToken=profiles[0].token)
        out["stream_uri"] = uri.Uri
        subscription = client.events().CreatePullPointSubscription()
        out["pullpoint"] = subscription.SubscriptionReference.Address._value_1
        pullpoint = client.pullpoint(subscription)
        topics: list[str] = []
        for _ in range(5):
            messages = pullpoint.PullMessages(Timeout="PT2S", MessageLimit=100)
            # this client's zeep drops the topic's text (mixed content): keep the Dialect
            # and check the message names a resource (tt:SimpleItem Name="Token" ...)
            for m in messages.NotificationMessage or []:
                text = str(m.Topic._value_1 or "") or repr(m.Message)
                topics.append("Resource/" + text if "Token" in text else text)
            if topics:
                break
        out["topics"] = topics
    except Exception as exc:  # report, the test decides
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


if __name__ == "__main__":
    h, p, u, pw = sys.argv[1:5]
    flags = set(sys.argv[5:])
    print(json.dumps(main(h, int(p), u, pw, "digest" in flags, "https" in flags)))
