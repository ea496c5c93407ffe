"""What the cloud changes between a front-door client and a device (DEV-R14, R16-R18).

:class:`CloudRewriter` is the front door's :class:`~.hooks.Rewriter`:

* **origin** -- the device sees the client's origin as ``:scheme`` /
  ``:authority`` on every route (UPL-59, DEV-R14 (1)) and builds its DEV-29
  URIs from it;
* **request headers** -- ``Authorization`` and client-sent forwarding headers
  dropped, then ``Forwarded`` and ``X-Forwarded-*`` added for the client's
  origin and address (DEV-R17; ``X-Forwarded-Prefix`` on the path route);
* **answers on the path route** -- the device cannot know the
  ``/devices/<id>`` prefix, so the URIs of SOAP answers (up to ``max_body``
  octets) get it spliced in: ``<origin>/x`` becomes ``<origin>/devices/<id>/x``
  (DEV-R16, :class:`~uplink62676.urirewrite.UriRewriter`).  Other content
  types, larger bodies and every octet outside those URIs pass unchanged.

``extra_rules(request)`` is the hook for more rules; :class:`RtspUriRules` is
the one of the cloud's RTSP gateway (``cloud --rtsp-listen``): the device's
``rtsp://<the client's host>[:554]/<path>`` (UPL-R21: a device under an
uplink names the origin's host and its RTSP port) becomes the gateway's URL
for that device, so the URI GetStreamUri returns through the cloud plays.
Without it ``rtsp://`` URIs are left as they are.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final
from urllib.parse import quote

from .._xml import DEFAULT_MAX_BYTES
from ..errors import ConfigurationError
from ..events import Headers
from ..origins import FORWARDING_HEADERS, Origin, forwarding_headers
from ..urirewrite import SOAP_MEDIA_TYPES, UriRewriter, UriRule
from .events import RequestRouted
from .hooks import BodyFilter

__all__ = ["CloudRewriter", "RtspUriRules", "SoapUriFilter", "passed_origin"]

_CACHE: Final = 256
#: Dropped from every request before the forwarding headers are added (DEV-R17, R18).
_DROPPED: Final = FORWARDING_HEADERS | {b"authorization", b"proxy-authorization"}
_NO_ORIGIN: Final = (None, ())


def passed_origin(request: RequestRouted, device_id: str) -> tuple[str, str]:
    """The client's origin on every route (``device_id`` when it sent no ``Host``)."""
    return request.scheme, request.authority or device_id


def _origin(request: RequestRouted) -> Origin | None:
    if not request.authority:
        return None
    try:
        return Origin.of(request.scheme, request.authority)
    except ConfigurationError:
        return None


def _as_bytes(name: bytes | str) -> bytes:
    return name.encode("latin-1") if isinstance(name, str) else bytes(name)


def _content_type(headers: Headers) -> str | None:
    for name, value in headers:
        if name == b"content-type":
            return value.decode("latin-1")
    return None


class RtspUriRules:
    """``extra_rules`` of :class:`CloudRewriter`: the device's RTSP URIs -> the RTSP gateway.

    One rule per request: ``rtsp://<client host>:<device_rtsp_port>`` (the
    device's answer, UPL-R21) becomes ``rtsp://<client host>:<rtsp_port>`` plus
    the route on the gateway:

    * path route (``/devices/<id>/...``) and the device's own port
      (``--device-ports``): ``/devices/<id>`` -- the gateway has one port, the
      path names the device;
    * virtual host (``<label>.DOMAIN``): no prefix -- the gateway routes
      ``rtsp://<label>.DOMAIN:<rtsp_port>/<path>`` by the host in the URL.

    The ``rtsp://`` URIs of answers are ``tt:Uri`` (Media ver10) and
    ``tr2:Uri`` (Media2); other hosts or ports pass unchanged.
    """

    __slots__ = ("device_rtsp_port", "domain", "rtsp_port")

    def __init__(self, rtsp_port: int, *, domain: str | None = None,
                 device_rtsp_port: int = 554) -> None:
        if not 0 < rtsp_port < 65536 or not 0 < device_rtsp_port < 65536:
            raise ConfigurationError(f"RTSP ports must be 1..65535: {rtsp_port}, "
                                     f"{device_rtsp_port}")
        self.rtsp_port = rtsp_port
        self.domain = domain.lower().strip(".") if domain else None
        self.device_rtsp_port = device_rtsp_port

    def prefix(self, request: RequestRouted, host: str) -> str:
        """The path prefix of the device's route on the gateway."""
        if request.route.prefix:
            return request.route.prefix
        if self.domain and host.endswith("." + self.domain):
            return ""
        return "/devices/" + quote(request.route.device_id, safe="")

    def __call__(self, request: RequestRouted) -> Sequence[UriRule]:
        origin = _origin(request)
        if origin is None or not request.route.device_id:
            return ()
        return (UriRule(Origin("rtsp", origin.host, self.device_rtsp_port),
                        Origin("rtsp", origin.host, self.rtsp_port), "",
                        self.prefix(request, origin.host)),)


class SoapUriFilter:
    """Buffers one SOAP answer (up to ``max_bytes``), then rewrites its URIs at the end.

    A larger answer is passed on unchanged from the octet that crossed the limit.
    """

    __slots__ = ("_buffer", "_content_type", "_passing", "_rewriter", "count")

    def __init__(self, rewriter: UriRewriter, content_type: str | None) -> None:
        self._rewriter = rewriter
        self._content_type = content_type
        self._buffer: list[bytes] = []
        self._passing = False
        self.count = 0

    def feed(self, data: bytes) -> bytes:
        """Collect the body; beyond the size limit stop collecting and pass it through unchanged."""
        if self._passing:
            return data
        self._buffer.append(data)
        if sum(map(len, self._buffer)) > self._rewriter.max_bytes:
            self._passing = True
            held, self._buffer = b"".join(self._buffer), []
            return held
        return b""

    def end(self) -> bytes:
        """Rewrite the collected body and return it (nothing when it was passed through)."""
        if self._passing:
            return b""
        body, self._buffer = b"".join(self._buffer), []
        result = self._rewriter.rewrite(body, self._content_type)
        self.count = result.count
        return result.body


class CloudRewriter:
    """The cloud's :class:`~.hooks.Rewriter` (see the module doc)."""

    __slots__ = ("_forwarding", "_rewriters", "extra_rules", "max_body")

    def __init__(self, *, max_body: int = DEFAULT_MAX_BYTES,
                 extra_rules: Callable[[RequestRouted], Sequence[UriRule]] | None = None) -> None:
        self.max_body = max_body
        self.extra_rules = extra_rules
        self._rewriters: OrderedDict[tuple[Origin, str], UriRewriter] = OrderedDict()
        # (scheme, authority, client address, client port, prefix) -> (origin, forwarding
        # headers): the same for every request of one connection (and its Host).
        self._forwarding: dict[tuple[str, str | None, str, int, str],
                               tuple[Origin | None, Headers]] = {}

    def origin(self, request: RequestRouted, device_id: str) -> tuple[str, str]:
        """The public origin (scheme, authority) the client used, for URLs in answers."""
        return passed_origin(request, device_id)

    def _client(self, request: RequestRouted) -> tuple[Origin | None, Headers]:
        """The client's origin and the forwarding headers that say so (memoized)."""
        peer = request.peer
        address, port = (peer.address, peer.port) if peer is not None else ("", 0)
        key = (request.scheme, request.authority, address, port, request.route.prefix)
        found = self._forwarding.get(key)
        if found is None:
            origin = _origin(request)
            if origin is None:
                found = _NO_ORIGIN
            else:
                found = (origin, forwarding_headers(
                    origin, client=address or None, client_port=port or None,
                    prefix=request.route.prefix))
            if len(self._forwarding) >= _CACHE:
                self._forwarding.clear()
            self._forwarding[key] = found
        return found

    def request_headers(self, request: RequestRouted) -> Headers:
        """Request headers for the device: credentials and untrusted forwarding headers removed,
        ours added (computed once per client and Host).
        """
        # Authorization and client-sent forwarding headers dropped (names in any case).
        headers = tuple(h for h in request.headers
                        if (h[0] if type(h[0]) is bytes else _as_bytes(h[0])).lower()
                        not in _DROPPED)
        return headers + self._client(request)[1]

    def response_body(self, request: RequestRouted, status: int,
                      headers: Headers) -> BodyFilter | None:
        """A filter that rewrites device URIs in SOAP answers to the public origin; ``None`` for
        other bodies.
        """
        prefix = request.route.prefix
        content_type = _content_type(headers)
        if content_type is None or content_type.split(";", 1)[0].strip().lower() \
                not in SOAP_MEDIA_TYPES:
            return None
        extra = self.extra_rules(request) if self.extra_rules is not None else ()
        if not prefix and not extra:
            return None  # by host or port the device's URIs are right as they are
        origin = self._client(request)[0]
        if origin is None:
            return None
        return SoapUriFilter(self._rewriter(origin, prefix, extra), content_type)

    def _rewriter(self, origin: Origin, prefix: str, extra: Sequence[UriRule]) -> UriRewriter:
        if extra:  # not cached: the hook may change its rules
            rules = [UriRule(origin, origin, "", prefix)] if prefix else []
            return UriRewriter([*extra, *rules], max_bytes=self.max_body)
        key = (origin, prefix)
        found = self._rewriters.get(key)
        if found is None:
            found = self._rewriters[key] = UriRewriter(UriRule(origin, origin, "", prefix),
                                                       max_bytes=self.max_body)
            while len(self._rewriters) > _CACHE:
                self._rewriters.popitem(last=False)
        else:
            self._rewriters.move_to_end(key)
        return found
