"""A legacy camera behind the device agent: its URIs through the tunneled request's origin.

``uplink62676 device --forward http://192.168.1.20`` replays tunneled requests
to a camera that builds its URIs (XAddrs, subscription references, media URIs;
DEV-29) from its LAN address.  For one tunneled request with ``:scheme`` /
``:authority`` (the client's origin, UPL-59) :meth:`CameraRewriting.bind` gives
a :class:`CameraBinding` that

* rewrites the camera's origin (and the ``--forward`` path prefix) in SOAP
  answers to the request's origin (DEV-R16),
* rewrites ``wsa:To`` in SOAP requests back to the camera's URL (DEV-R17),
* names the request's origin in ``Forwarded`` / ``X-Forwarded-*`` (DEV-R17).

With ``rtsp_url`` (``device --rtsp rtsp://CAMERA[:PORT][/prefix]``, the RTSP
server the agent bridges) the camera's stream URIs ``rtsp://CAMERA:PORT/x``
become ``rtsp://<the request's host>:554/x`` -- what a device under an uplink
answers (UPL-R21, as the simulated device does); the cloud's RTSP gateway
maps that to its own URL for the device (``RtspUriRules``) and the bridge maps
the path back to the camera.  Without it ``rtsp://`` URIs stay as they are.

Only SOAP content types and bodies up to ``max_body`` octets are touched,
every other octet stays.  Sans-I/O: bytes in, bytes out.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from ._xml import DEFAULT_MAX_BYTES
from .errors import ConfigurationError
from .frontdoor.rewrite import SoapUriFilter
from .origins import Origin, forwarding_headers
from .urirewrite import SOAP_MEDIA_TYPES, UriRewriter, UriRule

__all__ = ["CameraBinding", "CameraRewriting", "is_soap"]

_CACHE: Final = 64


def is_soap(content_type: str | bytes | None) -> bool:
    """Is this a SOAP (or plain XML) media type?"""
    if content_type is None:
        return False
    text = content_type.decode("latin-1") if isinstance(content_type, bytes) else content_type
    return text.split(";", 1)[0].strip().lower() in SOAP_MEDIA_TYPES


class CameraBinding:
    """The rewriting for one tunneled request (see the module doc)."""

    __slots__ = ("_requests", "_responses", "origin")

    def __init__(self, origin: Origin, responses: UriRewriter, requests: UriRewriter) -> None:
        self.origin = origin
        self._responses = responses
        self._requests = requests

    @property
    def max_body(self) -> int:
        """Largest response body that is rewritten; larger ones pass unchanged."""
        return self._responses.max_bytes

    def request_body(self, body: bytes, content_type: str | None) -> bytes:
        """``body`` with ``wsa:To`` pointing at the camera again."""
        return self._requests.rewrite(body, content_type).body

    def response_filter(self, content_type: str | None) -> SoapUriFilter | None:
        """A filter for the camera's answer, or None when it is not SOAP."""
        return SoapUriFilter(self._responses, content_type) if is_soap(content_type) else None

    def forwarding_headers(self, client: str | None = None) -> tuple[tuple[bytes, bytes], ...]:
        """``Forwarded`` + ``X-Forwarded-*`` naming the request's origin."""
        return forwarding_headers(self.origin, client=client)


class CameraRewriting:
    """Rewriting between a camera at ``camera_url`` and the origins its clients use."""

    __slots__ = ("_bindings", "camera", "max_body", "prefix", "rtsp", "rtsp_prefix")

    def __init__(self, camera_url: str, *, max_body: int = DEFAULT_MAX_BYTES,
                 rtsp_url: str | None = None) -> None:
        scheme, sep, rest = camera_url.partition("://")
        if not sep:
            raise ConfigurationError(f"camera URL needs scheme://host: {camera_url!r}")
        authority, slash, path = rest.partition("/")
        self.camera = Origin.of(scheme.lower(), authority.rpartition("@")[2])
        self.prefix = ("/" + path).rstrip("/") if slash else ""
        self.max_body = max_body
        self.rtsp: Origin | None = None
        self.rtsp_prefix = ""
        if rtsp_url is not None:
            scheme, sep, rest = rtsp_url.partition("://")
            if not sep or scheme.lower() != "rtsp":
                raise ConfigurationError(f"camera RTSP URL needs rtsp://host: {rtsp_url!r}")
            authority, slash, path = rest.partition("/")
            self.rtsp = Origin.of("rtsp", authority.rpartition("@")[2])
            self.rtsp_prefix = ("/" + path).rstrip("/") if slash else ""
        self._bindings: OrderedDict[Origin, CameraBinding] = OrderedDict()

    def bind(self, scheme: str | None, authority: str | None) -> CameraBinding | None:
        """The binding for a request's ``:scheme`` / ``:authority`` (None: no usable origin)."""
        if not scheme or not authority:
            return None
        try:
            origin = Origin.of(scheme.lower(), authority)
        except ConfigurationError:
            return None
        found = self._bindings.get(origin)
        if found is None:
            rule = UriRule(self.camera, origin, self.prefix, "")
            rules = [rule]
            if self.rtsp is not None:
                rules.append(UriRule(self.rtsp, Origin("rtsp", origin.host, 554),
                                     self.rtsp_prefix, ""))
            found = self._bindings[origin] = CameraBinding(
                origin, UriRewriter(rules, max_bytes=self.max_body),
                UriRewriter(rule.reversed(), fields="request", max_bytes=self.max_body))
            while len(self._bindings) > _CACHE:
                self._bindings.popitem(last=False)
        else:
            self._bindings.move_to_end(origin)
        return found
