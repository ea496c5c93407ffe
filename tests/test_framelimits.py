"""The frame guard on its own: preface check, frame size and the flood limits.

Spec: UPL-17 (connection preface), UPL-19 (SETTINGS_MAX_FRAME_SIZE), UPL-R22
and the flood rows of design.md (rapid reset CVE-2023-44487, PING
CVE-2019-9512, SETTINGS CVE-2019-9515 / CVE-2020-11080, PRIORITY
CVE-2019-9513 and UPL-R11, empty frames CVE-2019-9518, the 2024 CONTINUATION
flood), UPL-R24 (the peer's GOAWAY is handed to the tunnel).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplink62676.framelimits import PREFACE_MAGIC, FrameGuard, GoawayFrame, LimitCrossed
from uplink62676.settings import FloodSettings
from uplink62676.tunnel import ErrorCode

CALM = ErrorCode.ENHANCE_YOUR_CALM


def frame(ftype: int, flags: int = 0, sid: int = 0, payload: bytes = b"") -> bytes:
    """One raw HTTP/2 frame (RFC 9113 4.1)."""
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


SETTINGS = frame(0x4)
SETTINGS_ACK = frame(0x4, 0x1)


def data(sid: int = 1, payload: bytes = b"x", end: bool = False) -> bytes:
    return frame(0x0, 0x1 if end else 0, sid, payload)


def headers(sid: int = 1, block: bytes = b"\x82", end_headers: bool = True, end: bool = False) -> bytes:
    return frame(0x1, (0x4 if end_headers else 0) | (0x1 if end else 0), sid, block)


def continuation(sid: int = 1, block: bytes = b"\x00", end_headers: bool = False) -> bytes:
    return frame(0x9, 0x4 if end_headers else 0, sid, block)


def rst(sid: int = 1) -> bytes:
    return frame(0x3, 0, sid, (8).to_bytes(4, "big"))


def ping(ack: bool = False) -> bytes:
    return frame(0x6, 0x1 if ack else 0, 0, b"12345678")


def priority(sid: int = 1) -> bytes:
    return frame(0x2, 0, sid, b"\x00\x00\x00\x00\x10")


def goaway(last: int = 0, code: int = 0, debug: bytes = b"", sid: int = 0) -> bytes:
    return frame(0x7, 0, sid, last.to_bytes(4, "big") + code.to_bytes(4, "big") + debug)


def guard(
    floods: FloodSettings | None = None,
    *,
    magic: bool = False,
    pending: int = 0,
    max_frame_size: int = 16384,
) -> FrameGuard:
    """A guard that has already seen the peer's SETTINGS unless ``magic`` (a fresh device)."""
    g = FrameGuard(
        floods or FloodSettings(),
        max_frame_size,
        expect_magic=magic,
        pending_output=lambda: pending,
    )
    if not magic:
        assert g.scan(SETTINGS, 0, 0.0) == (len(SETTINGS), None)
    return g


def crossed(g: FrameGuard, wire: bytes, now: float = 1.0) -> tuple[int, LimitCrossed]:
    stop, verdict = g.scan(wire, 0, now)
    assert isinstance(verdict, LimitCrossed), verdict
    return stop, verdict


# --- UPL-17: the connection preface ------------------------------------------------------------


def test_upl17_magic_then_settings_passes_whole() -> None:
    """UPL-17: the device's guard lets the magic and the SETTINGS pass to h2 together."""
    g = guard(magic=True)
    wire = PREFACE_MAGIC + SETTINGS + SETTINGS_ACK
    assert g.scan(wire, 0, 0.0) == (len(wire), None)
    assert not g.need_magic


def test_upl17_partial_magic_waits_and_wrong_magic_is_protocol_error() -> None:
    """UPL-17: a prefix of the magic waits for more; the first wrong octet is PROTOCOL_ERROR."""
    g = guard(magic=True)
    assert g.scan(PREFACE_MAGIC[:10], 0, 0.0) == (0, None)
    assert g.need_magic
    stop, verdict = crossed(g, b"PRI * HTTP/1.1\r\n")
    assert stop == 0 and verdict.code == ErrorCode.PROTOCOL_ERROR
    assert "invalid HTTP/2 connection preface" in verdict.reason


@pytest.mark.parametrize("first", [SETTINGS_ACK, ping(), frame(0x8, 0, 0, b"\x00\x00\xff\xff")])
def test_upl17_first_frame_must_be_settings_without_ack(first: bytes) -> None:
    """UPL-17: after the magic (device) or at once (cloud) a non-ACK SETTINGS comes first."""
    for g, wire in (
        (guard(magic=True), PREFACE_MAGIC + first),
        (FrameGuard(FloodSettings(), 16384, expect_magic=False, pending_output=lambda: 0), first),
    ):
        stop, verdict = crossed(g, wire, 0.0)
        assert verdict.code == ErrorCode.PROTOCOL_ERROR and "not a SETTINGS frame" in verdict.reason
        assert stop == len(wire) - len(first)  # the magic may pass, the frame not


# --- UPL-19: frame size --------------------------------------------------------------------------


def test_upl19_oversized_frame_refused_from_its_header() -> None:
    """UPL-19: a frame above SETTINGS_MAX_FRAME_SIZE is FRAME_SIZE_ERROR once its header is in."""
    g = guard()
    before = headers() + data()
    big_header = (16385).to_bytes(3, "big") + b"\x00\x00\x00\x00\x00\x01"
    stop, verdict = crossed(g, before + big_header)
    assert stop == len(before) and verdict.code == ErrorCode.FRAME_SIZE_ERROR
    assert "16385" in verdict.reason
    larger = guard(max_frame_size=32768)
    wire = data(payload=b"x" * 16385)
    assert larger.scan(wire, 0, 1.0) == (len(wire), None)


def test_incomplete_frame_waits() -> None:
    """Only whole frames pass; the rest waits for the caller's next octets."""
    g = guard()
    wire = data() + data(payload=b"abcdef")
    assert g.scan(wire[:-2], 0, 1.0) == (len(data()), None)
    assert g.scan(wire, len(data()), 1.0) == (len(wire), None)


# --- UPL-R22: header blocks --------------------------------------------------------------------


def test_uplr22_header_block_interrupted_is_protocol_error() -> None:
    """RFC 9113 6.10: nothing but CONTINUATION inside a header block."""
    g = guard()
    stop, verdict = crossed(g, headers(end_headers=False) + ping())
    assert verdict.code == ErrorCode.PROTOCOL_ERROR and "interrupted" in verdict.reason
    assert stop == len(headers(end_headers=False))


def test_uplr22_continuation_flood() -> None:
    """UPL-R22, 2024 CONTINUATION flood: more than max_continuation_frames in one block."""
    g = guard(FloodSettings(max_continuation_frames=3))
    ok = headers(end_headers=False) + continuation() * 3
    stop, verdict = crossed(g, ok + continuation())
    assert stop == len(ok) and verdict == LimitCrossed(CALM, "more than 3 CONTINUATION frames")
    fresh = guard(FloodSettings(max_continuation_frames=3))
    wire = (headers(end_headers=False) + continuation() * 2 + continuation(end_headers=True)) * 5
    assert fresh.scan(wire, 0, 1.0) == (len(wire), None)  # the count is per block


def test_uplr22_header_block_size_cap() -> None:
    """UPL-R22: HEADERS + CONTINUATION octets of one block are capped."""
    g = guard(FloodSettings(max_header_block=100))
    first = headers(block=b"\x00" * 60, end_headers=False)
    stop, verdict = crossed(g, first + continuation(block=b"\x00" * 41))
    assert stop == len(first)
    assert verdict == LimitCrossed(CALM, "header block larger than 100 octets")


# --- UPL-R22: rate limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "floods", "reason"),
    [
        (lambda i: headers(2 * i + 1, end=True) + rst(2 * i + 1),
         FloodSettings(reset_burst=5), "RST_STREAM flood (rapid reset)"),
        (lambda i: ping(), FloodSettings(control_burst=5), "PING flood"),
        (lambda i: SETTINGS, FloodSettings(control_burst=5), "SETTINGS flood"),
        (lambda i: priority(2 * i + 1), FloodSettings(control_burst=5), "PRIORITY flood"),
        (lambda i: data(payload=b""), FloodSettings(empty_burst=5), "empty DATA frame flood"),
        (lambda i: headers(2 * i + 1, block=b""), FloodSettings(empty_burst=5),
         "empty HEADERS flood"),
        (lambda i: frame(0x20, 0, 0, b""), FloodSettings(empty_burst=5), "unknown frame flood"),
    ],
)
def test_uplr22_token_bucket_floods(
    make: Callable[[int], bytes], floods: FloodSettings, reason: str
) -> None:
    """UPL-R22 (CVE-2023-44487, -9512, -9515, -9513, -9518): the burst passes, one more ends it."""
    g = guard(floods)
    ok = b"".join(make(i) for i in range(5))
    stop, verdict = crossed(g, ok + make(5))
    assert verdict == LimitCrossed(CALM, reason)
    assert stop == len(ok) + (len(headers(11, end=True)) if "RST" in reason else 0)


def test_uplr22_empty_continuation_flood() -> None:
    """CVE-2019-9518: empty CONTINUATION frames count as empty frames."""
    g = guard(FloodSettings(empty_burst=2, max_continuation_frames=100))
    head = headers(end_headers=False)
    stop, verdict = crossed(g, head + continuation(block=b"") * 3)
    assert verdict == LimitCrossed(CALM, "empty CONTINUATION flood")
    assert stop == len(head) + 2 * len(continuation(block=b""))


def test_uplr22_buckets_refill_with_time_and_ignore_acks_and_end_stream() -> None:
    """UPL-R22: no false positives: the rate refills, ACKs and END_STREAM frames are free."""
    g = guard(FloodSettings(control_burst=2, control_rate=1, empty_burst=1, empty_rate=1))
    for i in range(50):
        wire = ping() + ping(ack=True) * 5 + SETTINGS_ACK * 5 + data(payload=b"", end=True)
        assert g.scan(wire, 0, 1.0 + 2 * i) == (len(wire), None)


def test_uplr22_settings_with_too_many_entries() -> None:
    """CVE-2020-11080: one SETTINGS frame with more than max_settings_entries entries."""
    g = guard(FloodSettings(max_settings_entries=4))
    entry = (0x4).to_bytes(2, "big") + (65535).to_bytes(4, "big")
    assert g.scan(frame(0x4, 0, 0, entry * 4), 0, 1.0)[1] is None
    _, verdict = crossed(g, frame(0x4, 0, 0, entry * 5))
    assert verdict == LimitCrossed(CALM, "SETTINGS frame with 5 entries (limit 4)")


def test_uplr22_acks_owed_to_a_peer_that_does_not_read() -> None:
    """UPL-R22: PING/SETTINGS whose ACKs would pile up beyond max_pending_output."""
    floods = FloodSettings(control_burst=10**6, control_rate=10**6, max_pending_output=100)
    g = guard(floods, pending=50)
    stop, verdict = crossed(g, ping() * 3 + SETTINGS)
    assert verdict == LimitCrossed(CALM, "PING flood") and stop == 2 * len(ping())  # 50+17+17+17
    g = guard(floods, pending=50)
    _, verdict = crossed(g, ping() * 2 + SETTINGS * 3)  # 50+34+9+9 > 100
    assert verdict == LimitCrossed(CALM, "SETTINGS flood")
    calls: list[int] = []
    counted = FrameGuard(floods, 16384, expect_magic=False,
                         pending_output=lambda: len(calls.append(1) or ()))
    counted.scan(SETTINGS + ping() * 4, 0, 1.0)
    assert len(calls) == 1  # measured once per scan, lazily


# --- UPL-R24: the peer's GOAWAY ------------------------------------------------------------------


def test_uplr24_goaway_stops_the_scan_for_the_tunnel() -> None:
    """UPL-R24: a GOAWAY is reported with what it says and where it ends; the scan resumes."""
    g = guard()
    head = data() + data()
    ga = goaway(7, 0, b"bye")
    wire = head + ga + data()
    stop, verdict = g.scan(wire, 0, 1.0)
    assert stop == len(head)
    assert verdict == GoawayFrame(7, 0, "bye", len(head) + len(ga))
    assert g.scan(wire, verdict.end, 1.0, resume=True) == (len(wire), None)
    assert g.scan(goaway(), 0, 1.0)[1] == GoawayFrame(0, 0, None, len(goaway()))


def test_uplr24_goaway_resume_keeps_the_octets_owed() -> None:
    """UPL-R22 across a GOAWAY: the ACKs owed before it still count after it."""
    floods = FloodSettings(control_burst=10**6, control_rate=10**6, max_pending_output=40)
    g = guard(floods)
    wire = ping() * 2 + goaway() + ping()
    _, verdict = g.scan(wire, 0, 1.0)
    assert isinstance(verdict, GoawayFrame)
    _, after = g.scan(wire, verdict.end, 1.0, resume=True)
    assert after == LimitCrossed(CALM, "PING flood")  # 17 * 3 > 40


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (frame(0x7, 0, 0, b"\x00" * 4), ErrorCode.FRAME_SIZE_ERROR),
        (goaway(sid=1), ErrorCode.PROTOCOL_ERROR),
    ],
)
def test_uplr24_malformed_goaway(wire: bytes, code: ErrorCode) -> None:
    """RFC 9113 6.8: GOAWAY shorter than 8 octets or on a stream is a connection error."""
    stop, verdict = crossed(guard(), data() + wire)
    assert stop == len(data()) and verdict == LimitCrossed(code, "malformed GOAWAY frame")


# --- split input -------------------------------------------------------------------------------

SMALL = FloodSettings(
    reset_burst=4, reset_rate=0.001, control_burst=4, control_rate=0.001, empty_burst=4,
    empty_rate=0.001, max_settings_entries=2, max_continuation_frames=2, max_header_block=40,
)
FRAMES = st.sampled_from(
    [
        SETTINGS, SETTINGS_ACK, ping(), ping(ack=True), priority(), rst(), data(),
        data(payload=b""), data(payload=b"y" * 30, end=True), headers(), headers(block=b""),
        headers(end_headers=False), continuation(), continuation(end_headers=True),
        continuation(block=b"\x00" * 25), goaway(3, 0, b"x"), goaway(sid=1),
        frame(0x4, 0, 0, b"\x00" * 18), frame(0x20, 0, 0, b"z"),
        (16385).to_bytes(3, "big") + b"\x00\x00\x00\x00\x00\x01",
    ]
)


def _run(chunks: list[bytes], magic: bool) -> tuple[bytes, list[tuple[int, int, str | None]],
                                                      LimitCrossed | None]:
    """Drive a guard the way the tunnel does: keep the incomplete tail, resume after GOAWAY."""
    g = FrameGuard(SMALL, 16384, expect_magic=magic, pending_output=lambda: 0)
    buf = bytearray()
    passed = bytearray()
    goaways: list[tuple[int, int, str | None]] = []
    for chunk in chunks:
        buf += chunk
        start = 0
        stop, verdict = g.scan(buf, 0, 1.0)
        while isinstance(verdict, GoawayFrame):
            passed += buf[start:stop]
            goaways.append((verdict.last_stream_id, verdict.error_code, verdict.debug))
            start = verdict.end
            stop, verdict = g.scan(buf, start, 1.0, resume=True)
        passed += buf[start:stop]
        if verdict is not None:
            return bytes(passed), goaways, verdict
        del buf[:stop]
    return bytes(passed), goaways, None


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(FRAMES, max_size=25),
    magic=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_upl17_uplr22_verdict_does_not_depend_on_how_octets_are_split(
    frames: list[bytes], magic: bool, cuts: list[int]
) -> None:
    """UPL-17, UPL-R22: the same octets give the same frames passed and the same verdict,
    in one piece or cut anywhere (TCP segments, WebSocket messages)."""
    wire = (PREFACE_MAGIC if magic else b"") + SETTINGS + b"".join(frames)
    points = sorted({c % (len(wire) + 1) for c in cuts})
    chunks = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    whole = _run([wire], magic)
    assert _run(chunks, magic) == whole
    passed, _, verdict = whole
    # h2 gets every frame but the GOAWAYs (the tunnel takes those), up to a crossed limit.
    to_h2 = wire[: len(wire) - len(b"".join(frames))] + b"".join(f for f in frames if f[3] != 0x7)
    assert to_h2.startswith(passed)
    assert verdict is not None or passed == to_h2
