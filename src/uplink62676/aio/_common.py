"""What the asyncio adapter's modules share (re-exported for older imports).

The values live where they belong: :class:`UplinkSpec` and :class:`Response`
in :mod:`uplink62676.io.common` (shared with the threaded adapter), the header
rules in :mod:`uplink62676.httpheaders`.
"""

from __future__ import annotations

from ..agent import header_value
from ..httpheaders import HOP_BY_HOP, USER_LEVEL_HEADER
from ..io.common import Response, UplinkSpec

__all__ = [
    "HOP_BY_HOP",
    "USER_LEVEL_HEADER",
    "Response",
    "UplinkSpec",
    "header_value",
]
