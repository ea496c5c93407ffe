"""Fuzz target: the RTSP-over-HTTP tunnel codec and a gateway session fed by it (MED-13..17).

Streamed base64 decoding, tunnel-head sniffing and a whole gateway session
must raise nothing but our errors, whatever the octets.
"""

from __future__ import annotations

from _common import main

from uplink62676.rtsp import Base64Decoder, GatewaySession, sniff_tunnel_head


def target(data: bytes) -> None:
    sniff_tunnel_head(data)
    decoder = Base64Decoder()
    half = len(data) // 2
    decoder.feed(data[:half])
    decoder.feed(data[half:])
    session = GatewaySession()
    session.receive_player(data, 0.0)
    if session.state.value == "tunnel opening":
        session.tunnel_opened(0.1)
        session.receive_device(data, 0.2)
        session.handle_timeout(100.0)
    session.player_data_to_send()
    session.device_data_to_send()


if __name__ == "__main__":
    main(target)
