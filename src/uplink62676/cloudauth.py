"""The cloud's authentication policy for upgrade requests, sans-I/O (uplink.md section 6).

The cloud decides on each upgrade request before any ``101`` (UPL-39):

* a verified client certificate wins; the identity is its subject CN (UPL-33, UPL-34);
* else a bearer token, which a validator turns into an identity (UPL-37..39);
* else anonymous, when the cloud allows it; otherwise ``401``.

A refusal carries its response headers, with the RFC 6750 challenge of UPL-R18:
``WWW-Authenticate: Bearer realm="uplink"`` when no token came, ``error="invalid_token"``
when one was refused.  Validators may be slow (an introspection call), so the policy does
not call them: :meth:`Authenticator.decide` answers :class:`ValidateToken`, the adapter runs
the validator however it likes (awaiting it, in a thread) and hands the outcome back to
:meth:`Authenticator.token_checked` or :meth:`Authenticator.validator_failed`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs

from . import events as ev

__all__ = [
    "PROTOCOL_NATIVE",
    "PROTOCOL_WEBSOCKET",
    "Accept",
    "AuthDecision",
    "AuthMethod",
    "Authenticator",
    "IdentityHook",
    "Refuse",
    "UpgradeContext",
    "ValidateToken",
    "anonymous_by_default",
    "fallback_identity",
]

#: How the device's uplink runs, as ``DeviceInfo.protocol`` shows it: natively (``https``,
#: UPL-6) or over WebSocket (``wss``, UPL-7).
PROTOCOL_NATIVE = "h2c-reverse"
PROTOCOL_WEBSOCKET = "h2c-reverse/websocket"

_CONTENT_TYPE = (b"content-type", b"text/plain; charset=utf-8")
_CHALLENGE = (b"www-authenticate", b'Bearer realm="uplink"')


def _redact(value: object) -> str:
    return "None" if value is None else "'<redacted>'"


class AuthMethod(enum.StrEnum):
    """How a device proved who it is (``DeviceInfo.auth``)."""

    MTLS = "mTLS"
    ACCESS_TOKEN = "AccessToken"  # noqa: S105 (a mode name, not a secret)
    NONE = "none"


@attrs.frozen(slots=True)
class UpgradeContext:
    """What the cloud knows about a device when it decides on the upgrade."""

    peer: str
    target: str
    host: str | None
    headers: ev.Headers
    client_cert_cn: str | None
    bearer_token: str | None = attrs.field(repr=_redact)
    websocket: bool = False

    @property
    def path(self) -> str:
        """The upgrade request's target without its query."""
        return self.target.split("?", 1)[0]


#: ``ctx -> device ID`` (None or empty: keep the ID the policy found).
IdentityHook = Callable[[UpgradeContext], "str | None"]


@attrs.frozen(slots=True)
class Accept:
    """Answer ``101``: the device is ``identity``, proven by ``method``."""

    identity: str
    method: AuthMethod
    protocol: str = PROTOCOL_NATIVE


@attrs.frozen(slots=True)
class Refuse:
    """Answer ``status`` instead of ``101``; ``headers`` include the challenge (UPL-R18).

    ``bearer_error`` is the RFC 6750 ``error`` attribute the uplink adds as
    ``WWW-Authenticate: Bearer error="..."``.
    """

    status: int
    reason: str
    headers: tuple[tuple[bytes, bytes], ...] = (_CONTENT_TYPE,)
    bearer_error: str | None = None

    @property
    def body(self) -> bytes:
        """The plain-text body sent with the refusal: the reason and a newline."""
        return (self.reason + "\n").encode()


@attrs.frozen(slots=True)
class ValidateToken:
    """Run the token validator on ``token``, then call :meth:`Authenticator.token_checked`."""

    token: str = attrs.field(repr=_redact)


AuthDecision = Accept | Refuse | ValidateToken


@attrs.frozen(slots=True)
class Authenticator:
    """Decides who a device is, or why it gets no uplink.

    ``validates_tokens``: a token validator is configured, so a token (and not only a
    certificate) is a way in.  ``allow_anonymous``: a device with neither may connect.
    ``identity_hook``: renames devices; it sees the whole :class:`UpgradeContext`.
    """

    validates_tokens: bool = False
    allow_anonymous: bool = False
    identity_hook: IdentityHook | None = None

    def decide(self, ctx: UpgradeContext) -> AuthDecision:
        """The first answer to an upgrade request."""
        if ctx.client_cert_cn is not None:
            return self._accept(ctx, ctx.client_cert_cn, AuthMethod.MTLS)
        if self.validates_tokens:
            if ctx.bearer_token is not None:
                return ValidateToken(ctx.bearer_token)
            if self.allow_anonymous:
                return self._accept(ctx, None, AuthMethod.NONE)
            return self._unauthorized(ctx, "no client certificate and no access token")
        if not self.allow_anonymous:
            return self._unauthorized(ctx, "no client certificate")
        return self._accept(ctx, None, AuthMethod.NONE)

    def token_checked(
        self, ctx: UpgradeContext, identity: str | None, error: str | None = None
    ) -> Accept | Refuse:
        """The validator's answer: an identity, or None / ``error`` (it refused the token)."""
        if error is not None:
            return self._unauthorized(ctx, f"invalid access token: {error}")
        if not identity:
            return self._unauthorized(ctx, "invalid access token")
        return self._accept(ctx, identity, AuthMethod.ACCESS_TOKEN)

    def validator_failed(self, ctx: UpgradeContext) -> Refuse:
        """The validator broke (not a refusal): the cloud's fault, ``500``."""
        return Refuse(500, "token validator failed")

    def _accept(self, ctx: UpgradeContext, identity: str | None, method: AuthMethod) -> Accept:
        if self.identity_hook is not None and (hooked := self.identity_hook(ctx)):
            identity = hooked
        if not identity:
            identity = fallback_identity(ctx)
        return Accept(identity, method, PROTOCOL_WEBSOCKET if ctx.websocket else PROTOCOL_NATIVE)

    @staticmethod
    def _unauthorized(ctx: UpgradeContext, reason: str) -> Refuse:
        # UPL-R18: a device that sent no token learns which scheme to use; one whose
        # token was refused learns why (the uplink adds Bearer error="invalid_token").
        if ctx.bearer_token is None:
            return Refuse(401, reason, (_CONTENT_TYPE, _CHALLENGE))
        return Refuse(401, reason, (_CONTENT_TYPE,), bearer_error="invalid_token")


def fallback_identity(ctx: UpgradeContext) -> str:
    """The device ID when nothing proved one: the last non-empty path segment, else the peer."""
    segments = [s for s in ctx.path.split("/") if s]
    return segments[-1] if segments else ctx.peer


def anonymous_by_default(*, validates_tokens: bool, verifies_certificates: bool) -> bool:
    """Whether a cloud that was not told lets devices in anonymously: only when it has
    no way to authenticate them at all (no token validator, no client-certificate check)."""
    return not validates_tokens and not verifies_certificates
