"""Tests of uplink62676.wsse: WS-Security UsernameToken, server side, and stripping it.

Spec: core-device.md section 3.3 (DEV-25, DEV-26, DEV-27, DEV-R9, DEV-R10) with
its worked example byte-exactly; DEV-R18 (credentials never reach a device).
"""

from __future__ import annotations

import base64
import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from uplink62676.errors import (
    AuthenticationError,
    ConfigurationError,
    SoapFault,
    UplinkError,
    XmlRejectedError,
)
from uplink62676.soap import parse_envelope
from uplink62676.wsse import (
    PASSWORD_DIGEST,
    PASSWORD_TEXT,
    WSSE,
    UsernameToken,
    UsernameTokenSettings,
    UsernameTokenVerifier,
    find_username_token,
    has_security_header,
    parse_created,
    password_digest,
    strip_security_headers,
)

NONCE = bytes.fromhex("8c1a2b3d4e5f60718293a4b5c6d7e8f9")
CREATED = "2026-03-01T08:15:30Z"
PASSWORD = "Uplink-62676"
NOW = parse_created(CREATED) + 12.0

SPEC_ENVELOPE = b"""<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
              xmlns:tds="http://www.onvif.org/ver10/device/wsdl"
              xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
              xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">
  <env:Header>
    <wsse:Security env:mustUnderstand="true">
      <wsse:UsernameToken>
        <wsse:Username>operator</wsse:Username>
        <wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">50unhjaKR/XiFJ+K21PijS8vSHE=</wsse:Password>
        <wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">jBorPU5fYHGCk6S1xtfo+Q==</wsse:Nonce>
        <wsu:Created>2026-03-01T08:15:30Z</wsu:Created>
      </wsse:UsernameToken>
    </wsse:Security>
  </env:Header>
  <env:Body><tds:GetDeviceInformation/></env:Body>
</env:Envelope>"""


def passwords(name: str) -> str | None:
    return {"operator": PASSWORD}.get(name)


def spec_token() -> UsernameToken:
    token = find_username_token(parse_envelope(SPEC_ENVELOPE).headers)
    assert token is not None
    return token


def check(token: UsernameToken, verifier: UsernameTokenVerifier | None = None, *,
          now: float = NOW, tls: bool = False):
    return (verifier or UsernameTokenVerifier()).verify(
        token, password_of=passwords, now=now, tls=tls)


def test_worked_example_digest() -> None:
    """DEV-26: the spec's digest and its two negative values, byte-exactly."""
    assert password_digest(NONCE, CREATED, PASSWORD) == "50unhjaKR/XiFJ+K21PijS8vSHE="
    assert password_digest(base64.b64encode(NONCE), CREATED, PASSWORD) == (
        "6cALq12ZSg1ZDr922W/mHFJpucY=")
    assert password_digest(NONCE, "2026-03-01T08:15:30.000Z", PASSWORD) == (
        "lPzB16WswO4V6Vc0jOoZs1us7yQ=")


def test_worked_example_token_is_read_and_accepted() -> None:
    """DEV-25, DEV-26, DEV-27: the spec's envelope passes once within the window."""
    token = spec_token()
    assert (token.username, token.is_digest, token.nonce, token.created) == (
        "operator", True, NONCE, CREATED)
    assert "50unhj" not in repr(token)
    out = check(token)
    assert out.ok and out.user == "operator"


@pytest.mark.parametrize("wrong", ["6cALq12ZSg1ZDr922W/mHFJpucY=", "lPzB16WswO4V6Vc0jOoZs1us7yQ="])
def test_worked_example_negative_digests_fail(wrong: str) -> None:
    """DEV-26: hashing the nonce's Base64 text, or a reformatted Created, must fail."""
    token = spec_token()
    forged = UsernameToken(token.username, wrong, True, token.nonce, token.created)
    out = check(forged)
    assert not out.ok and out.reason == "wrong password"


def test_wrong_password_and_unknown_user() -> None:
    """DEV-R10: both refused; the reason is for the log only."""
    digest = password_digest(NONCE, CREATED, "guess")
    assert check(UsernameToken("operator", digest, True, NONCE, CREATED)).reason == (
        "wrong password")
    digest = password_digest(NONCE, CREATED, PASSWORD)
    assert check(UsernameToken("mallory", digest, True, NONCE, CREATED)).reason == "unknown user"


@pytest.mark.parametrize(("offset", "ok"), [(-300.0, True), (300.0, True), (-301.0, False),
                                            (301.0, False), (-86400.0, False)])
def test_created_window(offset: float, ok: bool) -> None:
    """DEV-27, DEV-R9: Created within +-300 s of now."""
    out = check(spec_token(), now=parse_created(CREATED) - offset)
    assert out.ok is ok
    if not ok:
        assert "Created" in out.reason


def test_replayed_nonce_is_refused() -> None:
    """DEV-27: the same (username, nonce) is accepted once within the cache time."""
    verifier = UsernameTokenVerifier()
    assert check(spec_token(), verifier).ok
    again = check(spec_token(), verifier, now=NOW + 100)
    assert not again.ok and again.reason == "nonce replayed"
    assert verifier.cached_nonces() == 1
    # After the cache time the window refuses it anyway.
    late = check(spec_token(), verifier, now=NOW + 700)
    assert not late.ok and "Created" in late.reason
    assert verifier.cached_nonces() == 0


def test_replay_cache_bounded_and_safe() -> None:
    """Past max_cached_nonces the oldest entry goes and older tokens are refused."""
    verifier = UsernameTokenVerifier(UsernameTokenSettings(max_cached_nonces=2))
    base = parse_created(CREATED)
    tokens = []
    for i in range(3):
        created = datetime.datetime.fromtimestamp(base + i, datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        nonce = bytes([i]) * 16
        tokens.append(UsernameToken("operator", password_digest(nonce, created, PASSWORD), True,
                                    nonce, created))
        assert check(tokens[-1], verifier, now=base + 10).ok
    assert verifier.cached_nonces() == 2
    out = check(tokens[0], verifier, now=base + 10)
    assert not out.ok and "older" in out.reason
    assert not check(tokens[2], verifier, now=base + 10).ok


def test_nonce_and_created_required() -> None:
    """DEV-25: a token lacking either is refused."""
    digest = password_digest(NONCE, CREATED, PASSWORD)
    assert not check(UsernameToken("operator", digest, True, None, CREATED)).ok
    assert not check(UsernameToken("operator", digest, True, NONCE, None)).ok
    short = bytes(7)
    assert not check(UsernameToken("operator", password_digest(short, CREATED, PASSWORD), True,
                                   short, CREATED)).ok


def test_password_text_only_over_tls() -> None:
    """DEV-R9: PasswordText over TLS only."""
    token = UsernameToken("operator", PASSWORD, False, NONCE, CREATED)
    out = check(token)
    assert not out.ok and "TLS" in out.reason
    assert check(token, tls=True).ok
    no_text = UsernameTokenVerifier(UsernameTokenSettings(text_over_tls=False))
    assert not check(token, no_text, tls=True).ok


def _envelope(token_xml: str, extra_header: str = "") -> bytes:
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        f'xmlns:w="{WSSE}" xmlns:u="http://docs.oasis-open.org/wss/2004/01/'
        'oasis-200401-wss-wssecurity-utility-1.0.xsd">'
        f"<s:Header>{extra_header}<w:Security>{token_xml}</w:Security></s:Header>"
        '<s:Body><GetScopes xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body>'
        "</s:Envelope>").encode()


def test_any_order_and_default_type() -> None:
    """Receivers accept any child order; a missing Type means PasswordText."""
    xml = _envelope(f"<w:UsernameToken><u:Created>{CREATED}</u:Created>"
                    "<w:Nonce>jBorPU5fYHGCk6S1xtfo+Q==</w:Nonce>"
                    "<w:Password>pw</w:Password><w:Username> operator </w:Username>"
                    "</w:UsernameToken>")
    token = find_username_token(parse_envelope(xml).headers)
    assert token == UsernameToken("operator", "pw", False, NONCE, CREATED)


@pytest.mark.parametrize("token_xml", [
    "",
    "<w:UsernameToken/>",
    "<w:UsernameToken><w:Username>a</w:Username></w:UsernameToken>",
    f'<w:UsernameToken><w:Username>a</w:Username><w:Password Type="{PASSWORD_TEXT}x">p'
    "</w:Password></w:UsernameToken>",
    "<w:UsernameToken><w:Username>a</w:Username><w:Password>p</w:Password>"
    "<w:Nonce>***</w:Nonce></w:UsernameToken>",
    "<w:UsernameToken><w:Username>a</w:Username><w:Password>p</w:Password>"
    '<w:Nonce EncodingType="hex">00</w:Nonce></w:UsernameToken>',
    "<w:UsernameToken><w:Username>a</w:Username><w:Username>b</w:Username>"
    "<w:Password>p</w:Password></w:UsernameToken>",
    "<w:UsernameToken><w:Username></w:Username><w:Password>p</w:Password></w:UsernameToken>",
    "<w:UsernameToken><w:Username>a</w:Username><w:Password>p</w:Password></w:UsernameToken>" * 2,
])
def test_unreadable_tokens_raise_our_error(token_xml: str) -> None:
    with pytest.raises(AuthenticationError):
        find_username_token(parse_envelope(_envelope(token_xml)).headers)


def test_no_security_header() -> None:
    env = parse_envelope(b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope">'
                         b'<e:Body><x xmlns="urn:x"/></e:Body></e:Envelope>')
    assert find_username_token(env.headers) is None and not has_security_header(env.headers)


@pytest.mark.parametrize(("text", "expected_offset"), [
    ("2026-03-01T08:15:30Z", 0.0), ("2026-03-01T09:15:30+01:00", 0.0),
    ("2026-03-01T08:15:30.250Z", 0.25), (" 2026-03-01T03:15:30-05:00 ", 0.0),
    ("2026-02-28T24:00:00Z", -8 * 3600 - 15 * 60 - 30.0),
])
def test_parse_created(text: str, expected_offset: float) -> None:
    assert parse_created(text) == parse_created(CREATED) + expected_offset


@pytest.mark.parametrize("text", ["2026-03-01T08:15:30", "2026-13-01T08:15:30Z", "yesterday",
                                  "2026-02-30T00:00:00Z", "2026-03-01T08:15:30+25:00", ""])
def test_parse_created_refusals(text: str) -> None:
    with pytest.raises(AuthenticationError):
        parse_created(text)


def test_settings_validate() -> None:
    with pytest.raises(ConfigurationError):
        UsernameTokenSettings(clock_skew=400)  # cache shorter than two windows
    with pytest.raises(ConfigurationError):
        UsernameTokenSettings(max_cached_nonces=0)
    with pytest.raises(ConfigurationError):
        UsernameTokenSettings(clock_skew=-1)


def test_zeep_username_token_is_accepted() -> None:
    """Interop: zeep's UsernameToken(user, pw, use_digest=True) on a SOAP 1.2 envelope."""
    from zeep.wsse.username import UsernameToken as ZeepToken

    envelope = etree.fromstring(
        b'<soap-env:Envelope xmlns:soap-env="http://www.w3.org/2003/05/soap-envelope">'
        b'<soap-env:Header/><soap-env:Body>'
        b'<ns0:GetDeviceInformation xmlns:ns0="http://www.onvif.org/ver10/device/wsdl"/>'
        b"</soap-env:Body></soap-env:Envelope>")
    created = datetime.datetime(2026, 3, 1, 8, 15, 30, tzinfo=datetime.UTC)
    signed, _ = ZeepToken("operator", PASSWORD, use_digest=True, created=created).apply(
        envelope, {})
    data = etree.tostring(signed)
    token = find_username_token(parse_envelope(data).headers)
    assert token is not None and token.is_digest
    assert check(token).ok
    assert b"Security" not in strip_security_headers(data)


# --------------------------------------------------------------------------- stripping


def test_strip_spec_envelope_byte_exact() -> None:
    """DEV-R18: the Security block goes; every other octet stays."""
    start = SPEC_ENVELOPE.index(b"<wsse:Security")
    end = SPEC_ENVELOPE.index(b"</wsse:Security>") + len(b"</wsse:Security>")
    stripped = strip_security_headers(SPEC_ENVELOPE)
    assert stripped == SPEC_ENVELOPE[:start] + SPEC_ENVELOPE[end:]
    env = parse_envelope(stripped)
    assert env.headers == () and env.operation.endswith("GetDeviceInformation")


def test_strip_keeps_other_headers_comments_cdata() -> None:
    data = (b'<?xml version="1.0"?><!-- <w:Security> --><E:Envelope '
            b'xmlns:E="http://www.w3.org/2003/05/soap-envelope" xmlns:a="urn:a" '
            b'xmlns:w="' + WSSE.encode() + b'"><E:Header><a:To x=\'>\'>urn:x</a:To>'
            b'<!-- c --><w:Security E:mustUnderstand="1"><w:UsernameToken>'
            b"<w:Username><![CDATA[</w:Security>]]></w:Username></w:UsernameToken></w:Security>"
            b"<?pi x?><w:Security/><a:Other>keep</a:Other></E:Header>"
            b"<E:Body><a:Op>t&lt;</a:Op></E:Body></E:Envelope>")
    stripped = strip_security_headers(data)
    assert stripped == (
        b'<?xml version="1.0"?><!-- <w:Security> --><E:Envelope '
        b'xmlns:E="http://www.w3.org/2003/05/soap-envelope" xmlns:a="urn:a" '
        b'xmlns:w="' + WSSE.encode() + b'"><E:Header><a:To x=\'>\'>urn:x</a:To>'
        b"<!-- c --><?pi x?><a:Other>keep</a:Other></E:Header>"
        b"<E:Body><a:Op>t&lt;</a:Op></E:Body></E:Envelope>")


def test_strip_leaves_other_documents_alone() -> None:
    plain = b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
    assert strip_security_headers(plain) is plain
    other = b"<x><Security/></x>"
    assert strip_security_headers(other) is other
    body_only = (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:w="'
                 + WSSE.encode() + b'"><e:Header><w:Security/></e:Header><e:Body/></e:Envelope>')
    assert strip_security_headers(body_only) == body_only.replace(b"<w:Security/>", b"")
    with pytest.raises(XmlRejectedError):
        strip_security_headers(b"<not xml")


_WS = st.sampled_from(["", " ", "\n  ", "<!-- x -->", "<?p q?>"])


@given(_WS, _WS, _WS, _WS, st.booleans())
def test_strip_on_varied_layout(a: str, b: str, c: str, d: str, self_closing: bool) -> None:
    """Hypothesis: whatever the layout, only the Security blocks go and the result parses."""
    security = "<w:Security/>" if self_closing else (
        f"<w:Security>{b}<w:UsernameToken>{c}</w:UsernameToken></w:Security>")
    data = _envelope("", extra_header="").replace(
        b"<w:Security></w:Security>", f"{a}{security}{d}".encode())
    stripped = strip_security_headers(data)
    assert stripped == data.replace(security.encode(), b"", 1)
    assert not has_security_header(parse_envelope(stripped).headers)


@given(st.binary(max_size=400))
def test_token_reading_never_raises_anything_else(data: bytes) -> None:
    """Hypothesis: bytes in, a token or one of our errors out."""
    try:
        env = parse_envelope(data)
        find_username_token(env.headers)
        strip_security_headers(data)
    except (SoapFault, UplinkError):
        pass


@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_token_fields_fuzzed(user: str, nonce: str, created: str) -> None:
    """Hypothesis on field contents: only AuthenticationError, and verify never raises."""
    from xml.sax.saxutils import escape

    xml = _envelope(f"<w:UsernameToken><w:Username>{escape(user)}</w:Username>"
                    f'<w:Password Type="{PASSWORD_DIGEST}">x</w:Password>'
                    f"<w:Nonce>{escape(nonce)}</w:Nonce><u:Created>{escape(created)}</u:Created>"
                    "</w:UsernameToken>")
    try:
        env = parse_envelope(xml)
    except SoapFault:
        return
    try:
        token = find_username_token(env.headers)
    except AuthenticationError:
        return
    assert token is not None
    assert not check(token).ok
