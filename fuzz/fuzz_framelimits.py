"""Fuzz target: the frame guard alone (UPL-17 preface, UPL-19, UPL-R22 flood limits).

The input is cut into chunks at ``\\xff\\xfe`` and scanned the way the tunnel
does (keep the incomplete tail, resume after a GOAWAY).  The guard must never
raise, must only pass whole frames, and must give the same result as when the
same octets come in one piece.
"""

from __future__ import annotations

from _common import main

from uplink62676.framelimits import PREFACE_MAGIC, FrameGuard, GoawayFrame, LimitCrossed
from uplink62676.settings import FloodSettings

_FLOODS = FloodSettings(
    reset_burst=8, reset_rate=1, control_burst=8, control_rate=1, empty_burst=8, empty_rate=1,
    max_settings_entries=4, max_continuation_frames=3, max_header_block=256,
    max_pending_output=1 << 30,
)
_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _run(chunks: list[bytes], magic: bool) -> tuple[bytes, LimitCrossed | None]:
    guard = FrameGuard(_FLOODS, 16384, expect_magic=magic, pending_output=lambda: 0)
    buf = bytearray()
    passed = bytearray()
    for chunk in chunks:
        buf += chunk
        start = 0
        stop, verdict = guard.scan(buf, 0, 1.0)
        while isinstance(verdict, GoawayFrame):
            assert start <= stop < verdict.end <= len(buf)
            passed += buf[start:stop]
            start = verdict.end
            stop, verdict = guard.scan(buf, start, 1.0, resume=True)
        assert start <= stop <= len(buf)
        passed += buf[start:stop]
        if verdict is not None:
            assert isinstance(verdict, LimitCrossed) and verdict.code in (0x1, 0x6, 0xB)
            return bytes(passed), verdict
        del buf[:stop]
    return bytes(passed), None


def target(data: bytes) -> None:
    magic = bool(data[:1]) and data[0] & 1 == 1
    # Half the inputs start with a valid preface, so the fuzzer reaches the floods.
    head = (PREFACE_MAGIC if magic else b"") + (_SETTINGS if data[:1] and data[0] & 2 else b"")
    chunks = (head + data[1:]).split(b"\xff\xfe")
    assert _run(chunks, magic) == _run([b"".join(chunks)], magic)


if __name__ == "__main__":
    main(target)
