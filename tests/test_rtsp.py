"""The sans-I/O RTSP codecs and the gateway session (MED-12, MED-13, MED-14, MED-15, MED-16,
MED-17, MED-R3, MED-R4, MED-R5, MED-R12, MED-R13, MED-R14, MED-R15, MED-R16)."""

from __future__ import annotations

import base64
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplink62676.errors import RemoteProtocolError
from uplink62676.httpauth import DigestSettings, DigestVerifier, digest_response
from uplink62676.rtsp import (
    Base64Decoder,
    ClosePlayer,
    CloseTunnel,
    CookieTable,
    GatewaySession,
    Interleaved,
    OpenTunnel,
    RtspReader,
    RtspRequest,
    RtspResponse,
    SessionState,
    StreamRewriter,
    UrlMap,
    new_cookie,
    parse_route,
    rewrite_request,
    rewrite_response,
    serialize,
    sniff_tunnel_head,
    tunnel_channel,
)
from uplink62676.rtsp.httptunnel import POST_CONTENT_LENGTH, post_headers

PUBLIC = "rtsp://rtsp.vms.example.com/cam7/profile_1"
PRIVATE = "rtsp://cam7.uplink.example:8443/media/profile_1"
URLS = UrlMap("rtsp://rtsp.vms.example.com/cam7", "rtsp://cam7.uplink.example:8443/media")

SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=control:*\r\n"
       b"m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\n"
       b"a=control:rtsp://cam7.uplink.example:8443/media/profile_1/trackID=1\r\n")
DESCRIBE_REPLY = (b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\n"
                  b"Content-Base: rtsp://cam7.uplink.example:8443/media/profile_1/\r\n"
                  b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP)
FRAME = b"$\x00\x00\x05hello"
STREAM = (b"OPTIONS rtsp://a/b RTSP/1.0\r\nCSeq: 1\r\n\r\n" + FRAME + FRAME
          + DESCRIBE_REPLY + b"$\x01\x00\x00")


# --- messages ---------------------------------------------------------------------------------


def test_reader_tells_frames_from_messages() -> None:
    """MED-12: `$` starts a frame (channel, 16-bit length); consecutive frames come as one run."""
    items = RtspReader().feed(STREAM)
    assert [type(i) for i in items] == [RtspRequest, Interleaved, RtspResponse, Interleaved]
    assert items[1] == Interleaved(FRAME + FRAME, 2)
    reply = items[2]
    assert isinstance(reply, RtspResponse) and reply.body == SDP and reply.status == 200
    assert items[3] == Interleaved(b"$\x01\x00\x00", 1)


@given(st.lists(st.integers(0, len(STREAM)), max_size=6))
def test_reader_any_split(cuts: list[int]) -> None:
    """The same items whatever the split (messages whole, frame runs concatenated)."""
    reader = RtspReader()
    bounds = [0, *sorted(cuts), len(STREAM)]
    items: list[object] = []
    for a, b in itertools.pairwise(bounds):
        items += reader.feed(STREAM[a:b])
    frames = b"".join(i.data for i in items if isinstance(i, Interleaved))
    messages = [i for i in items if not isinstance(i, Interleaved)]
    assert frames == FRAME + FRAME + b"$\x01\x00\x00"
    assert messages == [i for i in RtspReader().feed(STREAM) if not isinstance(i, Interleaved)]
    assert reader.buffered == 0


def test_reader_bounds() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        RtspReader(max_head=100).feed(b"OPTIONS * RTSP/1.0\r\nX: " + b"a" * 200)
    assert info.value.http_status == 431
    with pytest.raises(RemoteProtocolError):
        RtspReader().feed(b"RTSP/1.0 200 OK\r\nContent-Length: 999999999\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        RtspReader().feed(b"BREW rtsp://a/ RTSP/1.0\r\n\r\n")
    assert info.value.http_status == 501
    with pytest.raises(RemoteProtocolError) as info:
        RtspReader().feed(b"OPTIONS * RTSP/2.0\r\n\r\n")
    assert info.value.http_status == 505


def test_serialize_round_trip() -> None:
    reply = RtspReader().feed(DESCRIBE_REPLY)[0]
    assert isinstance(reply, RtspResponse)
    assert serialize(reply) == DESCRIBE_REPLY


# --- rewriting --------------------------------------------------------------------------------


def test_rewriting_golden_media_section_9() -> None:
    """MED-R14, the example of media.md section 9: both ways, byte for byte."""
    request = RtspRequest("DESCRIBE", PUBLIC, (("CSeq", "2"), ("Authorization", "Digest x"),
                                              ("Session", "abc;timeout=60")))
    private = rewrite_request(request, URLS)
    assert serialize(private) == (b"DESCRIBE rtsp://cam7.uplink.example:8443/media/profile_1 "
                                  b"RTSP/1.0\r\nCSeq: 2\r\nSession: abc;timeout=60\r\n\r\n")
    reply = RtspReader().feed(DESCRIBE_REPLY)[0]
    assert isinstance(reply, RtspResponse)
    public = rewrite_response(reply, URLS)
    assert public.header("content-base") == "rtsp://rtsp.vms.example.com/cam7/profile_1/"
    assert b"a=control:rtsp://rtsp.vms.example.com/cam7/profile_1/trackID=1\r\n" in public.body
    assert b"a=control:*\r\n" in public.body
    assert public.header("content-length") == str(len(public.body))
    assert public.body.replace(b"rtsp.vms.example.com/cam7", b"cam7.uplink.example:8443/media") \
        == SDP


def test_rtp_info_and_location() -> None:
    reply = RtspResponse(200, "OK", (
        ("RTP-Info", f"url={PRIVATE}/trackID=1;seq=1;rtptime=2,url={PRIVATE}/trackID=2;seq=3"),
        ("Location", PRIVATE), ("Session", "x")))
    out = rewrite_response(reply, URLS)
    assert out.header("rtp-info") == (f"url={PUBLIC}/trackID=1;seq=1;rtptime=2,"
                                      f"url={PUBLIC}/trackID=2;seq=3")
    assert out.header("location") == PUBLIC and out.header("session") == "x"


@pytest.mark.parametrize("url", [
    "rtsp://cam7.uplink.example:84430/media/x",  # another port that starts alike
    "rtsp://other/media/profile_1",
    "rtsp://cam7.uplink.example:8443/mediax/profile_1",  # a prefix that is not a segment
    "trackID=1",
])
def test_foreign_urls_unchanged(url: str) -> None:
    assert URLS.to_public(url) == url


@given(st.text(alphabet="abcdefghij/_-.=?", max_size=30))
def test_url_map_round_trip(rest: str) -> None:
    url = "rtsp://rtsp.vms.example.com/cam7" + ("/" + rest if rest else "")
    assert URLS.to_public(URLS.to_private(url)) == url


@given(st.lists(st.integers(0, len(STREAM)), max_size=5))
def test_stream_rewriter_any_split(cuts: list[int]) -> None:
    data = STREAM.replace(b"rtsp://a/b", PUBLIC.encode())
    whole, _ = StreamRewriter(URLS, to_device=False).feed(data)
    r = StreamRewriter(URLS, to_device=False)
    bounds = [0, *sorted(cuts), len(data)]
    assert b"".join(r.feed(data[a:b])[0] for a, b in itertools.pairwise(bounds)) \
        == whole
    assert b"rtsp.vms.example.com/cam7/profile_1/trackID=1" in whole


def test_route() -> None:
    route = parse_route("rtsp://cloud:8554/devices/cam-1/stream?x=1")
    assert route is not None and route.device_id == "cam-1" and route.path == "/stream?x=1"
    assert route.public_base == "rtsp://cloud:8554/devices/cam-1"
    assert parse_route("rtsp://cloud/other/cam-1") is None
    assert parse_route("rtsp://cloud/devices//x") is None


# --- the HTTP tunnel codec --------------------------------------------------------------------


def test_base64_padded_quanta_med_r5() -> None:
    """MED-R5: a padded quantum ends only itself."""
    assert Base64Decoder().feed(b"T1BUSU9OUw==QUI=") == b"OPTIONSAB"
    assert base64.b64decode(b"T1BUSU9OUw==QUI=") == b"OPTIONS"  # why we decode by quanta


@given(st.lists(st.binary(max_size=40), max_size=6), st.data())
def test_base64_stream_any_split(messages: list[bytes], data: st.DataObject) -> None:
    """Each message encoded separately (MED-R5), whitespace inserted, split anywhere."""
    wire = b"\r\n".join(base64.b64encode(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=5)))
    decoder = Base64Decoder()
    bounds = [0, *cuts, len(wire)]
    out = b"".join(decoder.feed(wire[a:b]) for a, b in itertools.pairwise(bounds))
    assert out == b"".join(messages) and decoder.pending == 0


def test_base64_garbage_is_400() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        Base64Decoder().feed(b"OPT!ONS=")
    assert info.value.http_status == 400


def test_cookie_pairing_med_14_r4() -> None:
    table: CookieTable[str] = CookieTable(limit=2)
    table.open("abc", "get-1")
    assert table.bind("abc") == "get-1"
    with pytest.raises(RemoteProtocolError) as info:
        table.bind("ABC")  # exact equality
    assert info.value.http_status == 400
    with pytest.raises(RemoteProtocolError):
        table.open("abc", "again")
    table.open("x", "get-2")
    with pytest.raises(RemoteProtocolError) as info:
        table.open("y", "get-3")
    assert info.value.http_status == 503
    table.close("abc", "not-mine")
    assert table.bind("abc") == "get-1"
    table.close("abc")
    assert len(table) == 1


def test_channel_recognition_and_heads_transcript_g() -> None:
    cookie = new_cookie(lambda n: b"\x01" * n)
    assert len(cookie) == 22
    assert tunnel_channel("GET", [("x-sessioncookie", "4ZxQ9rT2"),
                                  ("accept", "application/x-rtsp-tunnelled")]) == ("GET", "4ZxQ9rT2")
    assert tunnel_channel("POST", [(b"x-sessioncookie", b"4ZxQ9rT2"),
                                   (b"content-type", b"application/x-rtsp-tunnelled")]) \
        == ("POST", "4ZxQ9rT2")
    assert tunnel_channel("GET", [("x-sessioncookie", "c")]) is None
    assert tunnel_channel("PUT", [("x-sessioncookie", "c")]) is None
    assert ("content-length", str(POST_CONTENT_LENGTH)) in post_headers("c")  # UPL-58, R28
    assert ("content-length", "2147483647") in post_headers("c")


def test_sniff_tunnel_head_med_6_1() -> None:
    """The worked example of media.md 6.1 (GET then POST), and ordinary HTTP left alone."""
    get = (b"GET /media/profile_1 HTTP/1.1\r\nHost: cam7.example.net\r\n"
           b"x-sessioncookie: 7ckZ0vXrL2kq9hB4tW1mNa\r\nAccept: application/x-rtsp-tunnelled\r\n"
           b"Pragma: no-cache\r\nCache-Control: no-cache\r\n\r\n")
    assert sniff_tunnel_head(get) == ("GET", "7ckZ0vXrL2kq9hB4tW1mNa", "/media/profile_1",
                                      len(get))
    post = get.replace(b"GET", b"POST").replace(b"Accept", b"Content-Type") + b"T1BU"
    assert sniff_tunnel_head(post) == ("POST", "7ckZ0vXrL2kq9hB4tW1mNa", "/media/profile_1",
                                       len(post) - 4)
    assert sniff_tunnel_head(b"GET /devices HTTP/1.1\r\nHost: x\r\n\r\n") is None
    assert sniff_tunnel_head(get[:30]) is None


# --- the gateway session ----------------------------------------------------------------------

URL = "rtsp://gw:8554/devices/cam-1/stream"


def _req(method: str, uri: str, cseq: int, *extra: tuple[str, str]) -> bytes:
    return serialize(RtspRequest(method, uri, (("CSeq", str(cseq)), *extra)))


def _opened(s: GatewaySession, now: float = 0.0) -> bytes:
    events = s.receive_player(_req("DESCRIBE", URL, 2), now)
    assert events == [OpenTunnel(parse_route(URL), None)]  # type: ignore[arg-type]
    assert s.state is SessionState.OPENING
    assert s.tunnel_opened(now) == []
    return s.device_data_to_send()


def test_options_answered_locally_then_tunnel_opens() -> None:
    s = GatewaySession()
    assert s.receive_player(_req("OPTIONS", URL, 1), 0.0) == []
    assert s.player_data_to_send().startswith(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS")
    to_device = _opened(s)
    assert to_device == b"DESCRIBE rtsp://cam-1/stream RTSP/1.0\r\nCSeq: 2\r\n\r\n"  # MED-R9
    sdp = SDP.replace(b"cam7.uplink.example:8443/media/profile_1", b"cam-1/stream")
    reply = serialize(RtspResponse(200, "OK", (("CSeq", "2"), ("Content-Type", "application/sdp"),
                                               ("Content-Base", "rtsp://cam-1/stream/")), sdp))
    assert s.receive_device(reply + FRAME, 0.0) == []
    out = s.player_data_to_send()
    assert b"Content-Base: rtsp://gw:8554/devices/cam-1/stream/\r\n" in out
    assert out.endswith(FRAME)


def test_udp_setup_is_461() -> None:
    s = GatewaySession()
    s.receive_player(_req("SETUP", URL, 1, ("Transport", "RTP/AVP;unicast;client_port=1-2")), 0)
    assert s.player_data_to_send().startswith(b"RTSP/1.0 461 Unsupported Transport")


def test_unknown_path_is_404_and_failed_tunnel_answers() -> None:
    s = GatewaySession()
    s.receive_player(_req("DESCRIBE", "rtsp://gw/elsewhere", 1), 0)
    assert s.player_data_to_send().startswith(b"RTSP/1.0 404")
    s.receive_player(_req("DESCRIBE", URL, 2), 0)
    s.tunnel_failed(404, 0)
    assert s.player_data_to_send() == b"RTSP/1.0 404 Not Found\r\nCSeq: 2\r\n\r\n"
    assert s.state is SessionState.AUTHENTICATED


def _playing(s: GatewaySession) -> None:
    _opened(s)
    s.receive_player(_req("SETUP", URL + "/stream=0", 3,
                          ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")), 0)
    s.receive_device(b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: s1;timeout=10\r\n\r\n", 0)
    s.receive_player(_req("PLAY", URL + "/", 4, ("Session", "s1")), 0)
    s.receive_device(b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: s1\r\n\r\n", 0)
    s.device_data_to_send()
    s.player_data_to_send()


def test_keepalive_every_half_timeout_replies_consumed_med_r3() -> None:
    s = GatewaySession()
    _playing(s)
    assert s.session_timeout == 10 and s.next_deadline() == 5
    assert s.handle_timeout(5.0) == []
    ka = s.device_data_to_send()
    assert ka.startswith(b"GET_PARAMETER rtsp://cam-1/stream/ RTSP/1.0\r\nCSeq: 1000000001")
    assert b"Session: s1" in ka
    s.receive_device(b"RTSP/1.0 200 OK\r\nCSeq: 1000000001\r\n\r\n" + FRAME, 5.1)
    assert s.player_data_to_send() == FRAME  # the reply is the gateway's, not the player's
    # a player silent for the whole timeout is torn down and closed (MED-R15)
    events = s.handle_timeout(10.0)
    assert [type(e) for e in events] == [CloseTunnel, ClosePlayer]
    assert s.device_data_to_send().startswith(b"TEARDOWN rtsp://cam-1/stream/")


def test_teardown_reply_ends_tunnel_player_stays() -> None:
    s = GatewaySession()
    _playing(s)
    s.receive_player(_req("TEARDOWN", URL + "/", 5, ("Session", "s1")), 1)
    assert s.device_data_to_send().startswith(b"TEARDOWN rtsp://cam-1/stream/")
    assert s.next_deadline() == 6.0  # teardown grace 5 s
    events = s.receive_device(b"RTSP/1.0 200 OK\r\nCSeq: 5\r\n\r\n", 1.1)
    assert events == [CloseTunnel("TEARDOWN answered")]
    assert s.state is SessionState.AUTHENTICATED and s.player_data_to_send()


def test_player_gone_tears_down() -> None:
    s = GatewaySession()
    _playing(s)
    events = s.receive_player(b"", 2)
    assert [type(e) for e in events] == [CloseTunnel, ClosePlayer]
    assert s.device_data_to_send().startswith(b"TEARDOWN")


def test_device_gone_closes_player() -> None:
    s = GatewaySession()
    _playing(s)
    assert [type(e) for e in s.receive_device(b"", 2)] == [CloseTunnel, ClosePlayer]


def _digest(nonce: str, method: str, uri: str) -> str:
    resp = digest_response(algorithm="MD5", username=b"viewer", realm="uplink62676",
                           password="pw", method=method, uri=uri, nonce=nonce,
                           nc="00000001", cnonce="c0ffee", qop="auth")
    return (f'Digest username="viewer", realm="uplink62676", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", qop=auth, nc=00000001, cnonce="c0ffee", algorithm=MD5')


@settings(max_examples=5)
@given(st.just(None))
def test_rtsp_digest_med_20(_: None) -> None:
    """Players authenticate with RTSP Digest (the front door's RFC 7616 verifier and users)."""
    verifier = DigestVerifier(DigestSettings(algorithms=("MD5",)), lambda n: b"\x07" * n)
    s = GatewaySession(verifier=verifier, password_of={"viewer": "pw"}.get,
                       can_see=lambda user, device: device == "cam-1")
    s.receive_player(_req("DESCRIBE", URL, 1), 0.0)
    challenge = s.player_data_to_send()
    assert challenge.startswith(b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nwww-authenticate: Digest")
    nonce = challenge.split(b'nonce="')[1].split(b'"')[0].decode()
    bad = _digest(nonce, "DESCRIBE", URL).replace('response="', 'response="0')
    s.receive_player(_req("DESCRIBE", URL, 2, ("Authorization", bad)), 0.1)
    assert s.player_data_to_send().startswith(b"RTSP/1.0 401")
    events = s.receive_player(_req("DESCRIBE", URL, 3,
                                   ("Authorization", _digest(nonce, "DESCRIBE", URL))), 0.2)
    assert [type(e).__name__ for e in events] == ["PlayerAuthenticated", "OpenTunnel"]
    s.tunnel_opened(0.3)
    assert b"Authorization" not in s.device_data_to_send()  # MED-R14: removed
