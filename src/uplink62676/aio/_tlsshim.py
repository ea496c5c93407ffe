"""Server-side TLS on memory BIOs, for thousands of mostly idle uplinks.

asyncio's own TLS transport keeps a 256 KiB read buffer per connection, which
alone costs a few hundred KiB of resident memory per idle uplink.  This shim
runs the same OpenSSL machinery (``SSLContext.wrap_bio``) over a plain TCP
transport and hands decrypted octets to the protocol it wraps, so an idle
uplink costs what OpenSSL and the state machines need and little more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any

from ..io.tls import describe_tls_error

__all__ = ["TlsServerShim"]

log = logging.getLogger("uplink62676.cloud")

_READ = 16384


class TlsServerShim(asyncio.Protocol):
    """Wraps an ``asyncio.Protocol``; to it, this object is the transport."""

    __slots__ = ("_handshaking", "_in", "_inner", "_obj", "_out", "_raw", "_timer")

    def __init__(self, context: ssl.SSLContext, inner: asyncio.Protocol,
                 handshake_timeout: float) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_side=True)
        self._inner = inner
        self._handshaking = True
        self._raw: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer = asyncio.get_running_loop().call_later(handshake_timeout, self._expired)

    @classmethod
    def factory(cls, context: ssl.SSLContext, inner: Callable[[], asyncio.Protocol],
                handshake_timeout: float) -> Callable[[], TlsServerShim]:
        return lambda: cls(context, inner(), handshake_timeout)

    # --- towards the socket -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._raw = transport

    def _expired(self) -> None:
        self._timer = None
        if self._handshaking and self._raw is not None:
            log.info("TLS handshake from %s not finished in time", self.get_extra_info("peername"))
            self._raw.abort()

    def _flush(self) -> None:
        data = self._out.read()
        if data and self._raw is not None and not self._raw.is_closing():
            self._raw.write(data)

    def data_received(self, data: bytes) -> None:
        self._in.write(data)
        if self._handshaking:
            try:
                self._obj.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                return
            except (ssl.SSLError, OSError) as exc:
                self._flush()
                log.warning("TLS handshake with %s failed: %s", self.get_extra_info("peername"),
                            describe_tls_error(exc))
                if self._raw is not None:
                    self._raw.close()
                return
            self._handshaking = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._flush()
            self._inner.connection_made(self)  # type: ignore[arg-type]
        chunks: list[bytes] = []
        eof = False
        while True:
            try:
                chunk = self._obj.read(_READ)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                eof = True
                break
            except (ssl.SSLError, OSError):
                if self._raw is not None:
                    self._raw.abort()
                return
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
        self._flush()
        if chunks:
            self._inner.data_received(b"".join(chunks))
        if eof:
            self._inner.eof_received()

    def eof_received(self) -> bool | None:
        if not self._handshaking:
            self._inner.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self._handshaking:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if not self._handshaking:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if not self._handshaking:
            self._inner.resume_writing()

    # --- the transport face the inner protocol sees -------------------------------------------

    def write(self, data: bytes) -> None:
        if self._raw is None or self._raw.is_closing():
            return
        try:
            self._obj.write(data)
        except (ssl.SSLError, OSError):
            self._raw.abort()
            return
        self._flush()

    def close(self) -> None:
        if self._raw is None or self._raw.is_closing():
            return
        with contextlib.suppress(ssl.SSLError, OSError):
            self._obj.unwrap()  # close_notify
        self._flush()
        self._raw.close()

    def abort(self) -> None:
        if self._raw is not None:
            self._raw.abort()

    def is_closing(self) -> bool:
        return self._raw is None or self._raw.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._obj
        if self._raw is None:
            return default
        return self._raw.get_extra_info(name, default)
