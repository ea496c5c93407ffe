"""What both adapters share: the uplink to keep up, the response an application returns.

Nothing here does I/O; :mod:`uplink62676.aio` and :mod:`uplink62676.threaded`
both build on it so a firmware team sees the same vocabulary in either.
"""

from __future__ import annotations

from ..agent import header_value
from ..io.common import Response, UplinkSpec

__all__ = [
    "HOP_BY_HOP",
    "USER_LEVEL_HEADER",
    "Response",
    "UplinkSpec",
    "header_value",
]

#: Header the forwarders add to tell a local web server the UserLevel of a
#: tunneled request (UPL-41); an incoming header of that name is dropped, so
#: the cloud cannot raise its own level (UPL-R19).
USER_LEVEL_HEADER = "x-uplink-user-level"

#: Connection-specific headers that never cross from HTTP/1.1 to HTTP/2 or back.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade",
    b"te", b"host", b"http2-settings", b"proxy-authorization", b"proxy-authenticate",
    b"trailer",
})
