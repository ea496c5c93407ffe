"""The frame guard in front of h2: preface check and flood limits (UPL-17, UPL-19, UPL-R22).

:class:`FrameGuard` reads the peer's raw HTTP/2 octets frame by frame,
before h2 does, and says how far they may pass to h2.  It checks

* the connection preface (UPL-17, RFC 9113 3.4): on the device the 24-octet
  magic first; on both ends a SETTINGS frame without ACK as the first frame;
* the frame size against our SETTINGS_MAX_FRAME_SIZE (UPL-19);
* header blocks: no other frame inside one, at most
  ``max_continuation_frames`` CONTINUATIONs and ``max_header_block`` octets;
* the floods of design.md (UPL-R22) with token buckets: RST_STREAM (rapid
  reset), PING, SETTINGS and PRIORITY, empty DATA/HEADERS/CONTINUATION and
  unknown frames; SETTINGS frames with too many entries; and PING/SETTINGS
  that would add ACKs to more than ``max_pending_output`` unread octets.

A crossed limit is a :class:`LimitCrossed` with the GOAWAY code and reason;
a GOAWAY frame from the peer stops the scan as a :class:`GoawayFrame` so the
tunnel can handle it itself (streams in flight may finish, UPL-R24).  The
guard never touches h2 and never buffers: the caller keeps incomplete frames
and scans them again with the next octets.

The scan loop is the per-frame hot path of every tunnel, so it reads the
frame header with plain indexing and keeps its counters in local variables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import attrs

from ._ratelimit import TokenBucket
from .settings import FloodSettings

__all__ = ["PREFACE_MAGIC", "FrameGuard", "GoawayFrame", "LimitCrossed"]

PREFACE_MAGIC: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_MAGIC_LENGTH: Final = len(PREFACE_MAGIC)

_DATA, _HEADERS, _PRIORITY, _RST, _SETTINGS, _PUSH, _PING, _GOAWAY, _WINDOW, _CONT = range(10)
_END_STREAM, _ACK, _END_HEADERS = 0x1, 0x1, 0x4

# RFC 9113 section 7 error codes the guard ends a connection with.
_PROTOCOL_ERROR: Final = 0x1
_FRAME_SIZE_ERROR: Final = 0x6
_ENHANCE_YOUR_CALM: Final = 0xB


@attrs.frozen(slots=True)
class LimitCrossed:
    """The peer broke a rule of the guard: end the connection with GOAWAY ``code``.

    ``code`` is an RFC 9113 error code (``ENHANCE_YOUR_CALM`` for the floods,
    ``PROTOCOL_ERROR`` / ``FRAME_SIZE_ERROR`` for a bad preface or framing);
    ``reason`` is short text for the GOAWAY debug data and the log.
    """

    code: int
    reason: str


@attrs.frozen(slots=True)
class GoawayFrame:
    """A well-formed GOAWAY from the peer; it ends at offset ``end`` of the scanned buffer."""

    last_stream_id: int
    error_code: int
    debug: str | None
    end: int


Verdict = LimitCrossed | GoawayFrame | None


class FrameGuard:
    """Preface and flood checks over one connection's inbound octets; see the module docstring.

    ``pending_output`` returns the octets queued for the peer and not read
    yet; it is asked at most once per :meth:`scan` and only when a PING or
    SETTINGS frame would add an ACK.
    """

    __slots__ = (
        "_block_frames",
        "_block_octets",
        "_control",
        "_empty",
        "_in_block",
        "_need_settings",
        "_owed",
        "_pending_output",
        "_resets",
        "floods",
        "max_frame_size",
        "need_magic",
    )

    def __init__(
        self,
        floods: FloodSettings,
        max_frame_size: int,
        *,
        expect_magic: bool,
        pending_output: Callable[[], int],
        now: float = 0.0,
    ) -> None:
        self.floods = floods
        self.max_frame_size = max_frame_size
        #: The 24-octet magic is still expected (the device end, UPL-17).
        self.need_magic = expect_magic
        self._pending_output = pending_output
        self._resets = TokenBucket(floods.reset_burst, floods.reset_rate, now)
        self._control = TokenBucket(floods.control_burst, floods.control_rate, now)
        self._empty = TokenBucket(floods.empty_burst, floods.empty_rate, now)
        # Both ends need a non-ACK SETTINGS as the peer's first frame (UPL-17).
        self._need_settings = True
        self._in_block = False  # inside a header block (HEADERS without END_HEADERS yet)
        self._block_octets = 0
        self._block_frames = 0
        self._owed = -1

    def scan(
        self, buf: bytes | bytearray, pos: int, now: float, *, resume: bool = False
    ) -> tuple[int, Verdict]:
        """Scan whole frames of ``buf`` from ``pos``; returns ``(stop, verdict)``.

        ``buf[pos:stop]`` may pass to h2.  ``verdict`` None: what follows
        ``stop`` is an incomplete frame (keep it for the next call).  A
        :class:`LimitCrossed`: the frame at ``stop`` broke it.  A
        :class:`GoawayFrame`: the peer's GOAWAY is at ``stop``; handle it and
        call again from its ``end`` with ``resume=True`` (same input, so the
        octets owed to the peer are not measured twice).
        """
        owed = self._owed if resume else -1  # octets owed incl. the ACKs this input adds
        if self.need_magic:
            have = min(len(buf) - pos, _MAGIC_LENGTH)
            got = bytes(buf[pos : pos + have])
            if got != PREFACE_MAGIC[:have]:
                return pos, LimitCrossed(
                    _PROTOCOL_ERROR, f"invalid HTTP/2 connection preface: {got!r}"
                )
            if have < _MAGIC_LENGTH:
                return pos, None
            pos += _MAGIC_LENGTH
            self.need_magic = False
        n = len(buf)
        max_frame = self.max_frame_size
        floods = self.floods
        while n - pos >= 9:
            length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            ftype = buf[pos + 3]
            flags = buf[pos + 4]
            if length > max_frame:
                return pos, LimitCrossed(
                    _FRAME_SIZE_ERROR,
                    f"frame of {length} octets exceeds SETTINGS_MAX_FRAME_SIZE {max_frame}",
                )
            end = pos + 9 + length
            if end > n:
                break
            if self._need_settings:
                if ftype != _SETTINGS or flags & _ACK:
                    return pos, LimitCrossed(
                        _PROTOCOL_ERROR,
                        f"invalid HTTP/2 connection preface: first frame is type {ftype} "
                        f"flags {flags:#x}, not a SETTINGS frame without ACK",
                    )
                self._need_settings = False
            if self._in_block and ftype != _CONT:
                return pos, LimitCrossed(
                    _PROTOCOL_ERROR, "header block interrupted by another frame"
                )
            if ftype == _DATA:
                if length == 0 and not flags & _END_STREAM and not self._empty.take(now):
                    return pos, LimitCrossed(_ENHANCE_YOUR_CALM, "empty DATA frame flood")
            elif ftype in (_HEADERS, _CONT):
                crossed = self._header_block(ftype, flags, length, now)
                if crossed is not None:
                    return pos, crossed
            elif ftype == _RST:
                if not self._resets.take(now):
                    return pos, LimitCrossed(_ENHANCE_YOUR_CALM, "RST_STREAM flood (rapid reset)")
            elif ftype == _SETTINGS:
                if not flags & _ACK:
                    if length // 6 > floods.max_settings_entries:
                        return pos, LimitCrossed(
                            _ENHANCE_YOUR_CALM,
                            f"SETTINGS frame with {length // 6} entries "
                            f"(limit {floods.max_settings_entries})",
                        )
                    owed = (self._pending_output() if owed < 0 else owed) + 9
                    if not self._control.take(now) or owed > floods.max_pending_output:
                        return pos, LimitCrossed(_ENHANCE_YOUR_CALM, "SETTINGS flood")
            elif ftype == _PING:
                if not flags & _ACK:
                    owed = (self._pending_output() if owed < 0 else owed) + 17
                    if not self._control.take(now) or owed > floods.max_pending_output:
                        return pos, LimitCrossed(_ENHANCE_YOUR_CALM, "PING flood")
            elif ftype == _GOAWAY:
                self._owed = owed
                return pos, _goaway(buf, pos, length, end)
            elif ftype == _PRIORITY:
                if not self._control.take(now):
                    return pos, LimitCrossed(_ENHANCE_YOUR_CALM, "PRIORITY flood")
            elif ftype > _CONT and not self._empty.take(now):
                return pos, LimitCrossed(_ENHANCE_YOUR_CALM, "unknown frame flood")
            pos = end
        return pos, None

    def _header_block(self, ftype: int, flags: int, length: int, now: float) -> LimitCrossed | None:
        """Count one HEADERS or CONTINUATION frame of a header block."""
        floods = self.floods
        if ftype == _HEADERS:
            self._in_block = True
            self._block_octets = 0
            self._block_frames = 0
            if length == 0 and not flags & _END_STREAM and not self._empty.take(now):
                return LimitCrossed(_ENHANCE_YOUR_CALM, "empty HEADERS flood")
        else:
            self._block_frames += 1
            if length == 0 and not self._empty.take(now):
                return LimitCrossed(_ENHANCE_YOUR_CALM, "empty CONTINUATION flood")
            if self._block_frames > floods.max_continuation_frames:
                return LimitCrossed(
                    _ENHANCE_YOUR_CALM,
                    f"more than {floods.max_continuation_frames} CONTINUATION frames",
                )
        self._block_octets += length
        if self._block_octets > floods.max_header_block:
            return LimitCrossed(
                _ENHANCE_YOUR_CALM, f"header block larger than {floods.max_header_block} octets"
            )
        if flags & _END_HEADERS:
            self._in_block = False
        return None


def _goaway(buf: bytes | bytearray, pos: int, length: int, end: int) -> Verdict:
    """The GOAWAY frame at ``pos``, or the framing error it carries (RFC 9113 6.8)."""
    sid = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
    if length < 8 or sid != 0:
        return LimitCrossed(_PROTOCOL_ERROR if sid else _FRAME_SIZE_ERROR, "malformed GOAWAY frame")
    last = int.from_bytes(buf[pos + 9 : pos + 13], "big") & 0x7FFFFFFF
    code = int.from_bytes(buf[pos + 13 : pos + 17], "big")
    debug = bytes(buf[pos + 17 : end]).decode("utf-8", "replace") or None
    return GoawayFrame(last, code, debug, end)
