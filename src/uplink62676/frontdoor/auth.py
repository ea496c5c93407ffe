"""Client authentication at the front door: a camera's refusals in front of every device.

:class:`FrontDoorAuth` puts a :class:`~uplink62676.clientauth.ClientAuthenticator`
behind the :class:`~.hooks.BodyAuthorizer` face of the adapter:

* a SOAP request with a body is decided on its body (the operation for
  ``PRE_AUTH``, the ``wsse:Security`` header for WS-UsernameToken); the body
  sent on has that header removed and the ``Authorization`` field is stripped by
  the rewriter (DEV-R18);
* a user sees only the devices its patterns match: another user's device gets
  exactly the answer of a device that is not connected
  (:func:`~.answers.unknown_device`), and ``GET /devices`` lists only its own;
* refusals are a camera's: ``401`` with Digest challenges, or ``400`` with
  ``env:Sender / ter:NotAuthorized`` for a failed UsernameToken.

HTTP credentials that passed once are remembered per connection
(:class:`ConnectionAuth`, keyed by method, target and the exact header value,
for the Digest nonce lifetime): a client that repeats its ``Authorization``
on one connection -- as h2load or a keep-alive script does -- is verified once.
:func:`refuse_all` is the front door without a users file.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from ..clientauth import Allowed, Challenge, ClientAuthenticator, PreAuth, SoapNotAuthorized
from ..errors import XmlRejectedError
from ..urirewrite import SOAP_MEDIA_TYPES
from ..users import Users
from ..wsse import strip_security_headers
from .answers import LocalAnswer, unknown_device
from .events import RequestRouted
from .hooks import Decision
from .routing import RouteKind

__all__ = ["MAX_AUTH_BODY", "ConnectionAuth", "FrontDoorAuth", "refuse_all"]

#: Largest request body the front door buffers to read a UsernameToken (DEV-R10).
MAX_AUTH_BODY: Final = 1 << 20

_SECURITY_MARK: Final = b"Security"
_MALFORMED = LocalAnswer.text(400, "malformed SOAP body\n")
_NO_USERS = LocalAnswer(
    401, b"no users are configured at this front door (cloud --users FILE)\n",
    extra=((b"www-authenticate", b'Bearer realm="uplink62676"'),))


def refuse_all(request: RequestRouted) -> Decision:
    """The front door without ``--users``: every request gets 401."""
    return Decision(False, _NO_USERS, reason="no users configured")


def _is_soap(headers: tuple[tuple[bytes, bytes], ...]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower().decode("latin-1")
            return media in SOAP_MEDIA_TYPES
    return False


class ConnectionAuth:
    """HTTP credentials verified on one connection (bounded; sans-I/O).

    An entry is ``(method, target, authorization value) -> (Allowed, until)``.
    """

    __slots__ = ("_entries", "limit")

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self._entries: OrderedDict[tuple[str, str, bytes], tuple[Allowed, float]] = OrderedDict()

    def get(self, key: tuple[str, str, bytes], now: float) -> Allowed | None:
        """A cached decision for these credentials on this connection, unless it has expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry[1]:
            del self._entries[key]
            return None
        return entry[0]

    def put(self, key: tuple[str, str, bytes], allowed: Allowed, until: float) -> None:
        """Cache a decision until ``until``; the oldest entries go when the cache is full."""
        self._entries[key] = (allowed, until)
        self._entries.move_to_end(key)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)


class FrontDoorAuth:
    """The front door's :class:`~.hooks.BodyAuthorizer` over a ``ClientAuthenticator``.

    ``decide(request, body, now, session)``: ``session`` is the connection's
    :class:`ConnectionAuth` (None: verify every request).
    """

    __slots__ = ("authenticator", "max_body")

    def __init__(self, authenticator: ClientAuthenticator, *,
                 max_body: int = MAX_AUTH_BODY) -> None:
        self.authenticator = authenticator
        self.max_body = max_body

    @property
    def users(self) -> Users:
        """The users the authenticator checks against (shared with the RTSP gateway)."""
        return self.authenticator.users

    def wants_body(self, request: RequestRouted) -> bool:
        """A SOAP request with a body: the operation and a UsernameToken are in it."""
        return (request.route.kind is RouteKind.DEVICE and not request.end_stream
                and _is_soap(request.headers))

    def decide(self, request: RequestRouted, body: bytes | None, now: float,
               session: ConnectionAuth | None = None) -> Decision:
        """Authenticate one request (``now``: wall-clock seconds)."""
        peer = request.peer
        authorization = None
        for name, value in request.headers:
            if name == b"authorization":
                authorization = value
                break
        key = None
        result = None
        if session is not None and authorization is not None and (
                body is None or _SECURITY_MARK not in body):
            key = (request.method, request.target, authorization)
            result = session.get(key, now)
        if result is None:
            outcome = self.authenticator.authenticate(
                method=request.method, target=request.target, headers=request.headers, now=now,
                client=peer.address if peer is not None else "",
                tls=peer.tls if peer is not None else False, body=body)
            if isinstance(outcome, Challenge):
                return Decision(False, LocalAnswer(
                    outcome.status, b"authentication required\n",
                    extra=tuple((n.encode("latin-1"), v.encode("latin-1"))
                                for n, v in outcome.headers)),
                    reason=outcome.description, failure=authorization is not None)
            if isinstance(outcome, SoapNotAuthorized):
                return Decision(False, LocalAnswer(
                    outcome.status, outcome.body, content_type=_content_type(outcome.headers)),
                    reason=outcome.description, failure=True)
            if isinstance(outcome, PreAuth):
                return self._pass(request, body, None, outcome.description)
            result = outcome
            if key is not None and "usernametoken" not in outcome.mechanisms:
                lifetime = self.authenticator.settings.digest.nonce_lifetime
                session.put(key, outcome, now + lifetime)  # type: ignore[union-attr]
        return self._pass(request, body, result, result.description)

    def _pass(self, request: RequestRouted, body: bytes | None, who: Allowed | None,
              reason: str) -> Decision:
        route = request.route
        principal = ", ".join(who.users) if who is not None else None
        if route.kind is RouteKind.LISTING:
            if who is None:  # pragma: no cover - a listing has no PRE_AUTH body
                return Decision(False, _NO_USERS, reason=reason)
            can_see = self.authenticator.can_see
            return Decision(principal=principal, may_see=lambda d: can_see(who, d),
                            reason=reason)
        if who is not None and not self.authenticator.can_see(who, route.device_id):
            # indistinguishable from a device that is not connected
            return Decision(False, unknown_device(route.device_id), principal=principal,
                            reason=f"{reason}: may not see this device")
        forwarded = None
        if body is not None and _SECURITY_MARK in body:
            try:
                stripped = strip_security_headers(body)
            except XmlRejectedError:
                return Decision(False, _MALFORMED, principal=principal, reason=reason)
            if stripped is not body:
                forwarded = stripped
        return Decision(principal=principal, body=forwarded, reason=reason)


def _content_type(headers: tuple[tuple[str, str], ...]) -> bytes:
    for name, value in headers:
        if name.lower() == "content-type":
            return value.encode("latin-1")
    return b"application/soap+xml; charset=utf-8"
