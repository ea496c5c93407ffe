"""Where client authentication and URI rewriting plug into the front door.

Two modules are written elsewhere against these faces; the adapter
(:mod:`uplink62676.aio.expose`) calls them at exactly one place each:

* :class:`Authorizer` -- ``authorize(request) -> Decision``, for every request
  routed to a device or to ``GET /devices``, before anything reaches a device
  (DEV-R18).  The request carries the client address and TLS
  (:class:`~.events.PeerInfo`), its headers and its route.  :func:`allow_all`
  lets everything pass.  A :class:`BodyAuthorizer` (WS-UsernameToken lives in
  the SOAP body) says per request whether it needs the body first; the adapter
  then buffers it (bounded) and calls ``decide(request, body, now)``
  (:class:`~uplink62676.frontdoor.auth.FrontDoorAuth`).
* :class:`Rewriter` -- ``request_headers(request)``: the header fields sent to
  the device (forwarding headers, DEV-R17; credentials stripped, DEV-R18);
  ``response_body(request, status, headers)``: a :class:`BodyFilter` the
  device's answer passes through (DEV-R16), or None to relay it as is.  With a
  filter the adapter drops ``content-length`` (the length may change).
  :class:`IdentityRewriter` changes nothing;
  :class:`~uplink62676.frontdoor.rewrite.CloudRewriter` is what the cloud uses.

:func:`client_origin` is the origin the device sees as ``:scheme`` /
``:authority`` (UPL-59, DEV-R14 (1)): by virtual host or own port, the client's
``Host`` as it reached the front door and ``https`` when the front door is TLS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import attrs

from ..events import Headers
from .answers import LocalAnswer
from .events import RequestRouted

__all__ = ["ALLOW", "Authorizer", "BodyAuthorizer", "BodyFilter", "Decision",
           "IdentityRewriter", "Rewriter", "allow_all", "client_origin"]


@attrs.frozen(slots=True)
class Decision:
    """What :class:`Authorizer` decided for one request.

    ``allowed`` False: the front door sends ``answer`` (a 401 with its
    challenge, a 404 indistinguishable from a missing device, ...; a plain 403
    when None) and the device sees nothing.  ``principal``: who the client is
    (logs only, never secrets).  ``may_see``: for ``GET /devices``, which device
    IDs this client may see listed (None: all).  ``body``: the request body to
    send on instead of the client's (its ``wsse:Security`` header removed,
    DEV-R18; None: as received).  ``reason``: why, safe to log (no secrets);
    ``failure``: credentials were presented and refused (logged as a warning).
    """

    allowed: bool = True
    answer: LocalAnswer | None = None
    principal: str | None = None
    may_see: Callable[[str], bool] | None = attrs.field(default=None, eq=False)
    body: bytes | None = attrs.field(default=None, repr=False)
    reason: str = ""
    failure: bool = False


ALLOW = Decision()
FORBIDDEN = LocalAnswer.text(403, "forbidden\n")


class Authorizer(Protocol):
    """Decides whether one routed request may go on (called once per request)."""

    def __call__(self, request: RequestRouted) -> Decision: ...


def allow_all(request: RequestRouted) -> Decision:
    """No authentication at the front door (``cloud --expose-open``, tests)."""
    return ALLOW


@runtime_checkable
class BodyAuthorizer(Protocol):
    """An authorizer that may need the request body (WS-UsernameToken) and ``now``.

    ``wants_body(request)``: buffer the body first (at most ``max_body``
    octets; beyond, the front door answers 413).  ``decide(request, body,
    now)``: ``body`` is None when the request has none or it was not wanted;
    ``now`` is wall-clock seconds.
    """

    max_body: int

    def wants_body(self, request: RequestRouted) -> bool:
        """True when the decision needs the request body (e.g. WS-Security in SOAP)."""
    def decide(self, request: RequestRouted, body: bytes | None, now: float) -> Decision:
        """Allow or refuse the request, given its body when :meth:`wants_body` asked for it."""


class BodyFilter(Protocol):
    """Transforms one response body as it streams; may hold octets back until :meth:`end`."""

    def feed(self, data: bytes) -> bytes:
        """Take a piece of the body; return what may go to the client now."""
    def end(self) -> bytes:
        """The body's end: return whatever was held back."""


class Rewriter(Protocol):
    """What passes between the client and the device (headers in, body out).

    A rewriter may also have ``origin(request, device_id) -> (scheme, authority)``:
    what the device sees as ``:scheme`` / ``:authority`` (default
    :func:`client_origin`).
    """

    def request_headers(self, request: RequestRouted) -> Headers:
        """The headers to send to the device for this request."""
    def response_body(self, request: RequestRouted, status: int,
                      headers: Headers) -> BodyFilter | None:
        """A filter for the response body, or ``None`` to pass it unchanged."""


@attrs.frozen(slots=True)
class IdentityRewriter:
    """Headers as the client sent them (hop-by-hop fields already gone), bodies untouched."""

    def request_headers(self, request: RequestRouted) -> Headers:
        """The headers unchanged."""
        return request.headers

    def response_body(self, request: RequestRouted, status: int,
                      headers: Headers) -> BodyFilter | None:
        """No body filter: responses pass unchanged."""
        return None

    def origin(self, request: RequestRouted, device_id: str) -> tuple[str, str]:
        """What the device sees as ``:scheme`` / ``:authority`` (:func:`client_origin`)."""
        return client_origin(request, device_id)


def client_origin(request: RequestRouted, device_id: str) -> tuple[str, str]:
    """``(scheme, authority)`` the device sees as ``:scheme`` / ``:authority``.

    By virtual host or own port (no ``route.prefix``): the client's ``Host`` /
    ``:authority`` (``device_id`` when it sent none) and ``https`` when the front
    door is TLS, so the device's URIs point back through the cloud as they are
    (UPL-59, DEV-R14).  On the path route the device cannot know the
    ``/devices/<id>`` prefix, so URIs built from the client's origin would miss
    it; until the answers are rewritten there (DEV-R16) it keeps seeing
    ``https`` + its device ID (UPL-R20), whose URIs clients resolve by path
    (UPL-R21).  (:class:`~uplink62676.frontdoor.rewrite.CloudRewriter`, the
    default, passes the client origin there too and rewrites the answers.)
    """
    if request.route.prefix:
        return "https", device_id
    return request.scheme, request.authority or device_id
