"""Blocking token source for access-token uplinks (UPL-R16): moves the bytes
of :class:`uplink62676.oauth.ClientCredentialsFlow` over HTTPS.

A :class:`TokenSource` is a callable returning a bearer token, so it plugs
into ``UplinkSpec(access_token=...)`` of both device agents.  It only talks
to the network when the cached token ran out (the asyncio agent calls it in
its loop: a refresh blocks that loop for one HTTPS exchange).
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from ..oauth import AuthorizationServerSettings, ClientCredentialsFlow, HttpRequest, OAuthError

__all__ = ["TokenSource"]


class TokenSource:
    """``source()`` -> a valid bearer token, fetched or cached."""

    def __init__(
        self,
        config: AuthorizationServerSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.flow = ClientCredentialsFlow(config)
        self._context = ssl_context or ssl.create_default_context()
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            for _ in range(3):  # metadata, token, and one spare
                now = self._clock()
                token = self.flow.token(now)
                if token is not None:
                    return token
                request = self.flow.next_request(now)
                assert request is not None
                status, body = self._send(request)
                self.flow.receive(status, body, self._clock())
            raise OAuthError("no token after the metadata and token exchanges")

    def invalidate(self) -> None:
        """Drop the cached token so the next call fetches a new one (after a 401)."""
        with self._lock:
            self.flow.invalidate()

    def _send(self, request: HttpRequest) -> tuple[int, bytes]:
        req = urllib.request.Request(  # noqa: S310 (https only: checked by the config and flow)
            request.url, data=request.body or None, method=request.method,
            headers=dict(request.headers))
        try:
            with urllib.request.urlopen(req, timeout=self._timeout,  # noqa: S310
                                        context=self._context) as resp:
                return int(resp.status), resp.read(64 * 1024)
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read(64 * 1024)
        except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OAuthError(f"authorization server unreachable: {reason}") from None
