"""A synthetic H.264 stream any decoder plays, as RTP packets (sans-I/O; demo and benchmarks).

No encoder is needed: every picture is an IDR of ``I_PCM`` macroblocks (the
samples stored raw, H.264 §7.3.5), Constrained Baseline, CAVLC.  The picture
is a grey field with a bright bar that moves one macroblock per frame.
:class:`SyntheticStream` pre-builds one cycle of pictures as RFC 6184 RTP
payloads (SPS, PPS single NAL units, the slice as FU-A fragments) and hands
out interleaved RTP/TCP frames (``$``, channel, length, RTP packet) with the
sequence number and timestamp filled in.
"""

from __future__ import annotations

import base64
import struct
from typing import Final

__all__ = ["SyntheticStream", "sdp"]

_FU_A: Final = 28
_MTU: Final = 1400


class _Bits:
    __slots__ = ("bits",)

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self.bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align(self) -> None:
        while len(self.bits) % 8:
            self.bits.append(0)

    def trailing(self) -> None:
        self.bits.append(1)
        self.align()

    def raw(self, data: bytes) -> None:
        assert len(self.bits) % 8 == 0
        self.bits.extend((b >> (7 - i)) & 1 for b in data for i in range(8))

    def bytes(self) -> bytes:
        assert len(self.bits) % 8 == 0
        out = bytearray()
        for i in range(0, len(self.bits), 8):
            byte = 0
            for bit in self.bits[i:i + 8]:
                byte = byte << 1 | bit
            out.append(byte)
        return bytes(out)


def _escape(rbsp: bytes) -> bytes:
    """Emulation prevention (§7.4.1): 0x000000..0x000003 get a 0x03 inserted."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps(width_mbs: int, height_mbs: int) -> bytes:
    b = _Bits()
    b.u(8, 66)  # profile_idc: Baseline
    b.u(8, 0xC0)  # constraint_set0 + set1: Constrained Baseline
    b.u(8, 30)  # level 3.0
    b.ue(0)  # seq_parameter_set_id
    b.ue(0)  # log2_max_frame_num_minus4
    b.ue(2)  # pic_order_cnt_type 2: output order = decoding order
    b.ue(1)  # max_num_ref_frames
    b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    b.ue(width_mbs - 1)
    b.ue(height_mbs - 1)
    b.u(1, 1)  # frame_mbs_only_flag
    b.u(1, 1)  # direct_8x8_inference_flag
    b.u(1, 0)  # frame_cropping_flag
    b.u(1, 0)  # vui_parameters_present_flag
    b.trailing()
    return b"\x67" + _escape(b.bytes())


def _pps() -> bytes:
    b = _Bits()
    b.ue(0)  # pic_parameter_set_id
    b.ue(0)  # seq_parameter_set_id
    b.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    b.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    b.ue(0)  # num_slice_groups_minus1
    b.ue(0)  # num_ref_idx_l0_default_active_minus1
    b.ue(0)  # num_ref_idx_l1_default_active_minus1
    b.u(1, 0)  # weighted_pred_flag
    b.u(2, 0)  # weighted_bipred_idc
    b.se(0)  # pic_init_qp_minus26
    b.se(0)  # pic_init_qs_minus26
    b.se(0)  # chroma_qp_index_offset
    b.u(1, 1)  # deblocking_filter_control_present_flag
    b.u(1, 0)  # constrained_intra_pred_flag
    b.u(1, 0)  # redundant_pic_cnt_present_flag
    b.trailing()
    return b"\x68" + _escape(b.bytes())


def _idr(index: int, width_mbs: int, height_mbs: int) -> bytes:
    b = _Bits()
    b.ue(0)  # first_mb_in_slice
    b.ue(7)  # slice_type: I, every slice of the picture
    b.ue(0)  # pic_parameter_set_id
    b.u(4, 0)  # frame_num (IDR)
    b.ue(index % 2)  # idr_pic_id: consecutive IDRs differ
    b.u(1, 0)  # no_output_of_prior_pics_flag
    b.u(1, 0)  # long_term_reference_flag
    b.se(0)  # slice_qp_delta
    b.ue(1)  # disable_deblocking_filter_idc: off
    bar = index % width_mbs
    chroma = bytes([128]) * 128
    for _row in range(height_mbs):
        for col in range(width_mbs):
            b.ue(25)  # mb_type I_PCM
            b.align()  # pcm_alignment_zero_bit
            luma = 235 if col == bar else 16 + 8 * (col % 8)
            b.raw(bytes([luma]) * 256 + chroma)
    b.trailing()
    return b"\x65" + _escape(b.bytes())


def _payloads(nal: bytes) -> list[bytes]:
    if len(nal) <= _MTU:
        return [nal]
    indicator = (nal[0] & 0xE0) | _FU_A
    kind = nal[0] & 0x1F
    body = nal[1:]
    chunks = [body[i:i + _MTU - 2] for i in range(0, len(body), _MTU - 2)]
    out = []
    for i, chunk in enumerate(chunks):
        header = kind | (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
        out.append(bytes([indicator, header]) + chunk)
    return out


class SyntheticStream:
    """One cycle of ``width_mbs`` pictures (16 x 16 pixel macroblocks), ``fps`` per second."""

    def __init__(self, width_mbs: int = 10, height_mbs: int = 6, fps: int = 10,
                 ssrc: int = 0x6267_6C00) -> None:
        if not (1 <= width_mbs <= 120 and 1 <= height_mbs <= 68 and 1 <= fps <= 60):
            raise ValueError("width_mbs 1..120, height_mbs 1..68, fps 1..60")
        self.width, self.height, self.fps, self.ssrc = width_mbs * 16, height_mbs * 16, fps, ssrc
        self.sps, self.pps = _sps(width_mbs, height_mbs), _pps()
        self.pictures = [[self.sps, self.pps, *_payloads(_idr(i, width_mbs, height_mbs))]
                         for i in range(width_mbs)]

    def frame(self, index: int, seq: int, channel: int = 0) -> tuple[bytes, int]:
        """Picture ``index`` as interleaved RTP/TCP octets; and the next sequence number."""
        timestamp = (index * 90000 // self.fps) & 0xFFFFFFFF
        payloads = self.pictures[index % len(self.pictures)]
        out = []
        for i, payload in enumerate(payloads):
            marker = 0x80 if i == len(payloads) - 1 else 0
            packet = struct.pack("!BBHII", 0x80, marker | 96, seq & 0xFFFF, timestamp,
                                 self.ssrc) + payload
            out.append(struct.pack("!BBH", 0x24, channel, len(packet)) + packet)
            seq += 1
        return b"".join(out), seq


def sdp(stream: SyntheticStream, control: str = "track1") -> bytes:
    """The session description of ``stream`` (H.264, packetization-mode 1)."""
    sets = ",".join(base64.b64encode(n).decode() for n in (stream.sps, stream.pps))
    profile = stream.sps[1:4].hex()
    return ("v=0\r\no=- 62676 1 IN IP4 127.0.0.1\r\ns=uplink62676 synthetic camera\r\n"
            "t=0 0\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            f"a=fmtp:96 packetization-mode=1;profile-level-id={profile};"
            f"sprop-parameter-sets={sets}\r\na=framerate:{stream.fps}\r\n"
            f"a=control:{control}\r\n").encode()
