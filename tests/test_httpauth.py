"""Tests of uplink62676.httpauth: the Authorization parser and the Digest verifier.

Spec: core-device.md section 3.2 (DEV-21, DEV-22, DEV-23, DEV-24, DEV-R8), with
its worked values byte-exactly, and the RFC 2617 / RFC 7616 vectors.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uplink62676.errors import AuthenticationError, ConfigurationError
from uplink62676.httpauth import (
    Credentials,
    DigestSettings,
    DigestVerifier,
    decode_basic,
    digest_challenge,
    digest_ha1,
    digest_response,
    parse_authorization,
)

USER, PASSWORD, REALM = "operator", "Uplink-62676", "ONVIF_camera"
NONCE, CNONCE, URI = "5f1c3a9d7e2b4c8061a0", "0a4f113b9c2d", "/onvif/device_service"
SPEC_AUTHORIZATION = (
    'Digest username="operator", realm="ONVIF_camera", nonce="5f1c3a9d7e2b4c8061a0", '
    'uri="/onvif/device_service", algorithm=MD5, response="f8a52b29738c9b29b7731847bd8af5b2", '
    'qop=auth, nc=00000001, cnonce="0a4f113b9c2d", opaque="a1b2c3d4"')


def counting_entropy():
    counter = itertools.count()
    return lambda n: bytes((next(counter) + i) % 256 for i in range(n))


def passwords(name: str) -> str | None:
    return {USER: PASSWORD, "alice": "wonder land"}.get(name)


# --------------------------------------------------------------------------- worked values


@pytest.mark.parametrize(("algorithm", "ha1", "response"), [
    ("MD5", "9908c5f4b4ed25a9a60b9ded90bc81c2", "f8a52b29738c9b29b7731847bd8af5b2"),
    ("SHA-256", "41f10da9cbb9b738c2b7d36e9840d93d8c5e695d99479b19a87a85216c8f3337",
     "13aad338efdfe4643998c5be6abe23018b9db126801458dbba5d41004f9a350f"),
])
def test_worked_example_of_core_device(algorithm: str, ha1: str, response: str) -> None:
    """DEV-21, DEV-23: HA1 and response of core-device.md section 3.2, byte-exactly."""
    assert digest_ha1(algorithm, USER, REALM, PASSWORD) == ha1
    assert digest_response(algorithm=algorithm, username=USER, realm=REALM, password=PASSWORD,
                           method="POST", uri=URI, nonce=NONCE, nc="00000001",
                           cnonce=CNONCE) == response


def test_worked_example_second_request() -> None:
    """DEV-23: nc=00000002 with a new cnonce gives the spec's second response."""
    assert digest_response(algorithm="MD5", username=USER, realm=REALM, password=PASSWORD,
                           method="POST", uri=URI, nonce=NONCE, nc="00000002",
                           cnonce="77e1c0d4aa01") == "22d7fcdbeeea7df3ec773ce66e303621"
    import hashlib
    assert hashlib.md5(b"POST:/onvif/device_service").hexdigest() == (
        "bb7214af296c80b7b6e7d4b2e47f4ae6")


def test_rfc_vectors() -> None:
    """RFC 2617 section 3.5 and RFC 7616 section 3.9.1 (the same code, DEV-21)."""
    assert digest_response(
        algorithm="MD5", username="Mufasa", realm="testrealm@host.com",
        password="Circle Of Life", method="GET", uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", nc="00000001",
        cnonce="0a4f113b") == "6629fae49393a05397450978507c4ef1"
    common = dict(username="Mufasa", realm="http-auth@example.org", password="Circle of Life",
                  method="GET", uri="/dir/index.html",
                  nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc="00000001",
                  cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    assert digest_response(algorithm="MD5", **common) == "8ca523f5e9506fed4657c9700eebdbec"
    assert digest_response(algorithm="SHA-256", **common) == (
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")


def test_challenge_matches_the_spec_lines() -> None:
    """DEV-22: one WWW-Authenticate per algorithm, same nonce, the spec's exact text."""
    assert digest_challenge(realm=REALM, nonce=NONCE, opaque="a1b2c3d4",
                            algorithms=("SHA-256", "MD5")) == (
        'Digest realm="ONVIF_camera", qop="auth", nonce="5f1c3a9d7e2b4c8061a0", '
        'opaque="a1b2c3d4", algorithm=SHA-256, stale=false',
        'Digest realm="ONVIF_camera", qop="auth", nonce="5f1c3a9d7e2b4c8061a0", '
        'opaque="a1b2c3d4", algorithm=MD5, stale=false')


def test_spec_authorization_line_parses() -> None:
    """The Authorization line of section 3.2 reads into its ten parameters."""
    creds = parse_authorization(SPEC_AUTHORIZATION)
    assert creds.scheme == "digest"
    assert creds.params["response"] == "f8a52b29738c9b29b7731847bd8af5b2"
    assert creds.params["qop"] == "auth" and creds.params["nc"] == "00000001"
    assert len(creds.params) == 10
    assert "f8a52b" not in repr(creds)


# --------------------------------------------------------------------------- parser


def test_parser_quoting_commas_case_and_escapes() -> None:
    creds = parse_authorization(
        'DiGeSt  UserName="a\\"b,c" ,, Realm = "x\\\\y",nc=00000001 , ')
    assert creds.scheme == "digest"
    assert dict(creds.params) == {"username": 'a"b,c', "realm": "x\\y", "nc": "00000001"}


def test_parser_token68() -> None:
    token = base64.b64encode(b"alice:wonder land").decode()
    creds = parse_authorization(f"Basic {token}")
    assert creds.token68 == token and decode_basic(creds) == ("alice", "wonder land")
    assert parse_authorization(b"Bearer abc.def-ghi~_/+==").token68 == "abc.def-ghi~_/+=="
    assert parse_authorization("Negotiate") == Credentials("negotiate")


@pytest.mark.parametrize("value", [
    "", " ", "=abc", "Digest, a=b", 'Digest a="unterminated', "Digest a=b c=d", "Digest a=, b=c",
    "Digest a=b, a=c", "Digest a=b\r\nX: y", "Digest =b", "Digest a==b", "Digest\x00a=b",
    "Digest a=b, " + ", ".join(f"p{i}=1" for i in range(40)), "Digest a=" + "x" * 9000,
    'Digest a="\\', "Basic:abc",
])
def test_parser_refuses_with_our_error(value: str) -> None:
    with pytest.raises(AuthenticationError):
        parse_authorization(value)


@pytest.mark.parametrize("token", ["!!!!", "YWxpY2U=", base64.b64encode(b"a\x00:b").decode()])
def test_basic_decode_refusals(token: str) -> None:
    with pytest.raises(AuthenticationError):
        decode_basic(parse_authorization(f"Basic {token}"))


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_parser_never_raises_anything_else(value: str | bytes) -> None:
    """Hypothesis: any input gives Credentials or an AuthenticationError."""
    try:
        creds = parse_authorization(value)
    except AuthenticationError:
        return
    assert creds.scheme == creds.scheme.lower()


_PIECES = st.sampled_from(['Digest ', 'Basic ', 'username=', '"', '\\', ',', ' ', '=', 'a',
                           'nc=00000001', 'realm="r"', '\t', '\xff', 'Bearer x'])


@given(st.lists(_PIECES, max_size=40).map("".join))
def test_parser_on_header_like_input(value: str) -> None:
    """Hypothesis on strings made of the header's own punctuation."""
    try:
        creds = parse_authorization(value)
    except AuthenticationError:
        return
    if creds.scheme == "basic" and creds.token68 is not None:
        with contextlib.suppress(AuthenticationError):
            decode_basic(creds)


# --------------------------------------------------------------------------- verifier


def _answer(challenge: str, *, user: str = USER, password: str = PASSWORD, nc: str = "00000001",
            uri: str = URI, method: str = "POST", algorithm: str | None = None,
            cnonce: str = CNONCE, extra: str = "") -> Credentials:
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    algorithm = algorithm or params["algorithm"]
    response = digest_response(algorithm=algorithm, username=user, realm=params["realm"],
                               password=password, method=method, uri=uri,
                               nonce=params["nonce"], nc=nc, cnonce=cnonce)
    return parse_authorization(
        f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{uri}", algorithm={algorithm}, response="{response}", qop=auth, nc={nc}, '
        f'cnonce="{cnonce}", opaque="{params["opaque"]}"{extra}')


def _verifier(**kw: object) -> DigestVerifier:
    return DigestVerifier(DigestSettings(realm=REALM, **kw), counting_entropy())  # type: ignore[arg-type]


def _verify(v: DigestVerifier, creds: Credentials, now: float = 100.0, target: str = URI,
            method: str = "POST"):
    return v.verify(creds, method=method, target=target, password_of=passwords, now=now)


def test_challenge_headers_and_fresh_nonces() -> None:
    """DEV-22: MD5 then SHA-256 by default, one nonce for both, a new nonce each time."""
    v = _verifier()
    first = v.challenge(10.0)
    assert [name for name, _ in first] == ["www-authenticate"] * 2
    assert "algorithm=MD5," in first[0][1] and "algorithm=SHA-256," in first[1][1]
    nonces = {re.search(r'nonce="([^"]+)"', value).group(1) for _, value in first}  # type: ignore[union-attr]
    assert len(nonces) == 1
    assert v.challenge(10.0)[0][1] != first[0][1]
    assert 'opaque="' + v.opaque + '"' in first[0][1] and "stale=false" in first[0][1]


@pytest.mark.parametrize("index", [0, 1])
def test_right_answer_accepted_for_both_algorithms(index: int) -> None:
    """DEV-21, DEV-23: MD5 and SHA-256 answers to our own challenge pass."""
    v = _verifier()
    out = _verify(v, _answer(v.challenge(100.0)[index][1]))
    assert out.ok and out.user == USER and not out.stale


def test_sess_variant_when_offered() -> None:
    v = _verifier(algorithms=("SHA-256-sess",))
    creds = _answer(v.challenge(1.0)[0][1])
    assert _verify(v, creds, now=1.0).ok
    assert not _verify(_verifier(), creds, now=1.0).ok  # not offered there


def test_wrong_password_and_unknown_user() -> None:
    """DEV-24: a wrong answer is refused without stale; the reason names no secret."""
    v = _verifier()
    out = _verify(v, _answer(v.challenge(100.0)[0][1], password="guess"))
    assert (out.ok, out.stale, out.reason) == (False, False, "wrong response")
    out = _verify(v, _answer(v.challenge(100.0)[0][1], user="mallory"))
    assert (out.ok, out.stale, out.reason) == (False, False, "unknown user")


def test_expired_nonce_gives_stale_only_when_right() -> None:
    """DEV-24, DEV-R8: right answer + old nonce -> stale=true; wrong answer -> not stale."""
    v = _verifier(nonce_lifetime=60.0)
    header = v.challenge(100.0)[0][1]
    out = _verify(v, _answer(header), now=161.0)
    assert (out.ok, out.stale, out.user) == (False, True, USER)
    out = _verify(v, _answer(header, password="guess"), now=161.0)
    assert (out.ok, out.stale) == (False, False)
    assert _verify(v, _answer(header), now=159.0).ok


def test_foreign_nonce_with_right_answer_is_stale() -> None:
    """A nonce we did not issue (e.g. the spec's, or before a restart) -> stale=true."""
    v = _verifier()
    out = _verify(v, parse_authorization(SPEC_AUTHORIZATION.replace(', opaque="a1b2c3d4"', "")))
    assert (out.ok, out.stale) == (False, True)
    tampered = DigestVerifier(DigestSettings(realm=REALM), lambda n: b"\xff" * n)
    header = tampered.challenge(1.0)[0][1]
    assert _verify(v, _answer(header.replace(tampered.opaque, v.opaque)), now=1.0).stale


def test_nc_must_increase_per_nonce() -> None:
    """DEV-R8: a repeated or lower nc is refused (stale=false); a higher one passes."""
    v = _verifier()
    header = v.challenge(100.0)[0][1]
    assert _verify(v, _answer(header)).ok
    replay = _verify(v, _answer(header))
    assert (replay.ok, replay.stale) == (False, False) and "nc" in replay.reason
    assert _verify(v, _answer(header, nc="00000003", cnonce="77e1c0d4aa01")).ok
    assert not _verify(v, _answer(header, nc="00000002")).ok
    assert _verify(v, _answer(header, nc="0000000A")).ok


def test_replay_table_is_bounded_and_forgotten_nonces_go_stale() -> None:
    """Bounded memory: past max_tracked_nonces the oldest nonces turn stale, never replayable."""
    v = _verifier(max_tracked_nonces=3)
    headers = [v.challenge(100.0 + i)[0][1] for i in range(5)]
    for i, header in enumerate(headers):
        assert _verify(v, _answer(header), now=100.0 + i).ok
    assert v.tracked_nonces() == 3
    replay = _verify(v, _answer(headers[0], nc="00000002"), now=105.0)
    assert (replay.ok, replay.stale) == (False, True)
    assert _verify(v, _answer(headers[4], nc="00000002"), now=105.0).ok


@pytest.mark.parametrize(("change", "reason"), [
    ({"uri": "/onvif/media_service"}, "uri"),
    ({"method": "GET"}, "wrong response"),
    ({"algorithm": "SHA-512-256"}, "unsupported"),
    ({"extra": ", userhash=true"}, "userhash"),
])
def test_answer_must_fit_this_request(change: dict[str, str], reason: str) -> None:
    """DEV-23: the uri is the request target; the method is hashed in."""
    v = _verifier()
    header = v.challenge(100.0)[0][1]
    if "algorithm" in change:
        creds = Credentials("digest", {**_answer(header).params, "algorithm": change["algorithm"]})
    else:
        creds = _answer(header, uri=change.get("uri", URI), method=change.get("method", "POST"),
                        extra=change.get("extra", ""))
    out = _verify(v, creds)
    assert not out.ok and not out.stale and reason in out.reason


@pytest.mark.parametrize("drop", ["realm", "nonce", "uri", "response", "qop", "nc", "cnonce"])
def test_missing_parameter(drop: str) -> None:
    v = _verifier()
    creds = _answer(v.challenge(100.0)[0][1])
    params = {k: val for k, val in creds.params.items() if k != drop}
    out = _verify(v, Credentials("digest", params))
    assert not out.ok and drop in out.reason


@pytest.mark.parametrize(("key", "value"), [
    ("realm", "other"), ("qop", "auth-int"), ("opaque", "nope"), ("nc", "1"),
    ("cnonce", ""), ("username", "\xff\xfe"),
])
def test_bad_parameter_values(key: str, value: str) -> None:
    v = _verifier()
    creds = _answer(v.challenge(100.0)[0][1])
    out = _verify(v, Credentials("digest", {**creds.params, key: value}))
    assert not out.ok and not out.stale


def test_absolute_form_target_and_username_star() -> None:
    """The uri may be the path of an absolute-form target; RFC 7616 username* is read."""
    v = _verifier()
    header = v.challenge(100.0)[0][1]
    assert _verify(v, _answer(header), target="http://cloud.example" + URI).ok
    creds = _answer(header, nc="00000002")
    params = {k: val for k, val in creds.params.items() if k != "username"}
    params["username*"] = "UTF-8''operator"
    assert _verify(v, Credentials("digest", params)).ok
    assert not _verify(v, Credentials("digest", {**params, "username*": "latin1''x"})).ok


def test_settings_validate() -> None:
    with pytest.raises(ConfigurationError):
        DigestSettings(algorithms=())
    with pytest.raises(ConfigurationError):
        DigestSettings(algorithms=("MD5", "MD5"))
    with pytest.raises(ConfigurationError):
        DigestSettings(algorithms=("SHA-1",))
    with pytest.raises(ConfigurationError):
        DigestSettings(nonce_lifetime=0)
    with pytest.raises(ConfigurationError):
        DigestSettings(realm="")
    with pytest.raises(ConfigurationError):
        DigestVerifier(DigestSettings(), lambda n: b"short")
