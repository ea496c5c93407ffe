"""What both device adapters share: the uplink to keep up, the response an application returns.

:mod:`uplink62676.aio` and :mod:`uplink62676.threaded` re-export these, so a
firmware team sees the same vocabulary in either, and neither adapter has to
import the other (importing the threaded adapter never loads asyncio).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, Callable, Iterable

import attrs

from ..errors import ConfigurationError
from ..handshake import RemoteAddress
from .tls import device_tls_context

__all__ = ["Response", "UplinkSpec"]


def _levels(value: str | Iterable[str]) -> tuple[str, ...]:
    items = tuple(value.split()) if isinstance(value, str) else tuple(value)
    if not items or any(not isinstance(i, str) or not i or " " in i for i in items):
        raise ConfigurationError(f"user_level must name at least one level or role, got {value!r}")
    return items


def _token_repr(value: object) -> str:
    return "None" if value is None else "'<redacted>'"


@attrs.frozen(slots=True)
class UplinkSpec:
    """One uplink the device keeps up (UPL-51).

    ``remote_address``: ``https://host[:port]/path`` for native h2c-reverse or
    ``wss://...`` for h2c-reverse over WebSocket (UPL-6, UPL-7); ``http://`` and
    ``ws://`` only with ``insecure_plaintext=True``, for tests and local experiments.
    ``ssl_context``: from :func:`uplink62676.io.tls.device_tls_context`; None
    means the system trust store, no client certificate.
    ``access_token``: a string or a callable asked before every attempt
    (access-token mode, UPL-37/38); never logged.  ``user_level``: the
    UserLevel every tunneled request gets (UPL-41; a role list, UPL-42).
    """

    remote_address: str
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, eq=False)
    access_token: str | Callable[[], str] | None = attrs.field(default=None, repr=_token_repr)
    user_level: tuple[str, ...] = attrs.field(default=("User",), converter=_levels)
    insecure_plaintext: bool = False

    def __attrs_post_init__(self) -> None:
        address = RemoteAddress.parse(self.remote_address, allow_plaintext=self.insecure_plaintext)
        if self.insecure_plaintext and address.scheme not in ("http", "ws"):
            raise ConfigurationError(
                f"insecure_plaintext=True needs an http:// or ws:// address, "
                f"got {self.remote_address!r}"
            )

    @property
    def address(self) -> RemoteAddress:
        """The parsed ``remote_address``."""
        return RemoteAddress.parse(self.remote_address, allow_plaintext=self.insecure_plaintext)

    def tls_context(self) -> ssl.SSLContext | None:
        """The context to connect with; None only for plaintext."""
        if self.insecure_plaintext:
            return None
        return self.ssl_context if self.ssl_context is not None else device_tls_context()

    def token(self) -> str | None:
        """The access token for the next attempt: the value, or what the callable returns now."""
        value = self.access_token
        return value() if callable(value) else value


HeaderPairs = tuple[tuple[str | bytes, str | bytes], ...]


def _pairs(value: Iterable[tuple[str | bytes, str | bytes]]) -> HeaderPairs:
    return tuple(value)


@attrs.frozen(slots=True)
class Response:
    """What an application handler returns for a tunneled request.

    ``body`` is the whole body as bytes, or an (async) iterable of chunks that
    is pulled only as fast as the cloud reads (back-pressure).
    """

    status: int = 200
    headers: HeaderPairs = attrs.field(default=(), converter=_pairs)
    body: bytes | AsyncIterable[bytes] | Iterable[bytes] = b""
