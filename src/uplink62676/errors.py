"""Exception types of uplink62676.

Every public method raises only these (never an exception of h2, h11, hpack,
wsproto or lxml).  The split follows h11: :class:`LocalProtocolError` means the
caller used the API wrongly; :class:`RemoteProtocolError` means the peer broke
the protocol and carries what goes back on the wire (an HTTP status before the
upgrade, an HTTP/2 error code after it).  :class:`SoapFault` is the value form
of an ONVIF SOAP fault; service handlers turn it into an envelope.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AuthenticationError",
    "ConfigStoreError",
    "ConfigurationError",
    "CorruptStoreError",
    "InvalidDeviceIdError",
    "InvalidTokenError",
    "LocalProtocolError",
    "NotificationFault",
    "OAuthError",
    "RemoteProtocolError",
    "SoapFault",
    "TransportError",
    "UplinkError",
    "UsersFileError",
    "XmlRejectedError",
]


class UplinkError(Exception):
    """Base class of every error this library raises."""


class LocalProtocolError(UplinkError):
    """The caller asked for something the protocol or the current state forbids.

    Example: sending a response on a stream that has no request, or a device
    trying to open a stream.  Nothing is sent to the peer because of it.
    """


class RemoteProtocolError(UplinkError):
    """The peer broke the protocol.

    ``http_status`` is the status to answer with while still in HTTP/1.1
    (before the upgrade); ``error_code`` is the HTTP/2 error code of the
    GOAWAY or RST_STREAM that was (or should be) sent after it.
    """

    def __init__(
        self, message: str, *, http_status: int | None = None, error_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code


class ConfigurationError(UplinkError, ValueError):
    """A configuration value is invalid; the message names the value and the rule."""


class InvalidTokenError(UplinkError, ValueError):
    """A reference token or remote token breaks a rule of tokens.md."""


class InvalidDeviceIdError(UplinkError, ValueError):
    """A 20-digit device ID (tokens.md section 5) is malformed."""


class SoapFault(UplinkError):
    """An ONVIF SOAP 1.2 fault as a value.

    ``code`` is the SOAP fault code as a prefixed name (``env:Sender``,
    ``env:Receiver``, ``env:VersionMismatch``, ``env:MustUnderstand``,
    ``env:DataEncodingUnknown``); ``subcodes`` is the nested Subcode chain,
    outermost first, as prefixed names resolved through
    :data:`uplink62676.namespaces.PREFIXES` (``ter:InvalidArgVal``, ...).
    ``detail`` is optional serialized XML (bytes) placed inside ``env:Detail``.
    """

    def __init__(
        self,
        code: str,
        subcodes: Sequence[str] = (),
        reason: str = "",
        *,
        detail: bytes | None = None,
        http_status: int | None = None,
    ) -> None:
        self.code = code
        self.subcodes = tuple(subcodes)
        self.reason = reason
        self.detail = detail
        self._http_status = http_status
        chain = "/".join((code, *self.subcodes))
        super().__init__(f"{chain}: {reason}" if reason else chain)

    @property
    def http_status(self) -> int:
        """HTTP status for this fault: 400 for ``env:Sender``, else 500 (OQ-19).

        An explicit ``http_status`` given at construction wins (the event
        service always answers 500, EVT-59).
        """
        if self._http_status is not None:
            return self._http_status
        return 400 if self.code == "env:Sender" else 500

    def __repr__(self) -> str:
        return f"SoapFault(code={self.code!r}, subcodes={self.subcodes!r}, reason={self.reason!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SoapFault):
            return NotImplemented
        return (self.code, self.subcodes, self.reason, self.detail) == (
            other.code,
            other.subcodes,
            other.reason,
            other.detail,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.subcodes, self.reason))


class XmlRejectedError(UplinkError, ValueError):
    """An XML document was refused by the hardened parser.

    ``reason`` is a short machine-friendly word (``too-large``, ``doctype``,
    ``too-deep``, ``too-many-elements``, ``encoding``, ``malformed``);
    the message says what was found.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotificationFault(SoapFault):
    """A WS-BaseNotification / WSRF fault of the event service (events.md section 16).

    ``fault`` is the prefixed name of the fault element carried in
    ``env:Detail`` (``'wsnt:InvalidFilterFault'``, ``'wsrf-r:ResourceUnknownFault'``,
    ``'tev:PullMessagesFaultResponse'``).  Always ``env:Receiver`` and HTTP 500
    (EVT-59, EVT-60).
    """

    def __init__(self, fault: str, reason: str, *, detail: bytes) -> None:
        super().__init__("env:Receiver", (), reason, detail=detail, http_status=500)
        self.fault = fault


class ConfigStoreError(UplinkError):
    """The uplink configuration store could not be read or written (``store.py``).

    ``path`` is the store file; the underlying ``OSError`` (if any) is the
    exception's ``__cause__``.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class CorruptStoreError(ConfigStoreError):
    """The store file was unreadable or corrupt at start-up.

    It has been moved aside to ``moved_to`` (``<name>.corrupt-<n>``, or
    ``None`` if even that failed) and is never overwritten silently.
    """

    def __init__(self, message: str, *, path: str, moved_to: str | None) -> None:
        super().__init__(message, path=path)
        self.moved_to = moved_to


class TransportError(UplinkError):
    """An uplink could not be carried: TLS failed, ALPN chose ``h2`` (UPL-R3),
    the peer vanished, or a tunneled request could not reach its device.

    ``reason`` is the short, secret-free text an adapter puts into the
    uplink's ``Error`` field (UPL-R27), e.g. ``"TLS: certificate has expired"``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OAuthError(UplinkError):
    """The authorization server refused or answered something unusable.

    ``error`` is the RFC 6749 error code when the server sent one
    (``invalid_client``, ``invalid_scope``, ...).  Never holds a secret.
    """

    def __init__(self, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


class AuthenticationError(UplinkError):
    """A client's credentials could not even be read (a malformed ``Authorization``
    header, a broken ``wsse:UsernameToken``).

    The message names the rule that was broken and never quotes a password,
    digest response or token; an authenticator turns it into the same refusal
    as wrong credentials.
    """


class UsersFileError(ConfigurationError):
    """The users file (``cloud --users FILE``) has an error on line ``line``.

    The message says what is wrong (too few fields, a duplicate user, ...)
    and never quotes a password or token.
    """

    def __init__(self, message: str, *, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
