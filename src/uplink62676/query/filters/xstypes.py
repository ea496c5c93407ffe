"""XML Schema lexical forms the filters read: ``xs:double``, ``xs:float``, ``xs:boolean``."""

from __future__ import annotations

import math
import re
import struct
from typing import Final

from ._common import _XML_WS

_DOUBLE_RE: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?INF|NaN")


def _xs_double(text: str) -> float:
    s = text.strip(_XML_WS)
    if not _DOUBLE_RE.fullmatch(s):
        raise ValueError(f"not an xs:double: {text!r}")
    return float(s.replace("INF", "inf"))


def _xs_float(text: str) -> float:
    value = _xs_double(text)
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _xs_boolean(text: str) -> bool:
    s = text.strip(_XML_WS)
    if s in ("true", "1"):
        return True
    if s in ("false", "0"):
        return False
    raise ValueError(f"not an xs:boolean: {text!r}")
