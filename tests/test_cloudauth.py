"""The cloud's authentication policy, sans-I/O (UPL-33, UPL-34, UPL-37..39, UPL-R18)."""

from __future__ import annotations

import pytest

from uplink62676.cloudauth import (
    PROTOCOL_NATIVE,
    PROTOCOL_WEBSOCKET,
    Accept,
    Authenticator,
    AuthMethod,
    Refuse,
    UpgradeContext,
    ValidateToken,
    anonymous_by_default,
    fallback_identity,
)

PLAIN = (b"content-type", b"text/plain; charset=utf-8")
REALM = (b"www-authenticate", b'Bearer realm="uplink"')


def ctx(*, cn: str | None = None, token: str | None = None, target: str = "/uplink/cam-9",
        websocket: bool = False) -> UpgradeContext:
    return UpgradeContext("10.0.0.5:4433", target, "cloud.example", (), cn, token, websocket)


MTLS_ONLY = Authenticator()
TOKENS = Authenticator(validates_tokens=True)
OPEN = Authenticator(allow_anonymous=True)


def test_upl33_34_certificate_cn_is_the_identity() -> None:
    """UPL-33, UPL-34: a verified client certificate wins, whatever else came along."""
    for policy in (MTLS_ONLY, TOKENS, OPEN):
        assert policy.decide(ctx(cn="cam-2", token="tk")) == Accept("cam-2", AuthMethod.MTLS)


def test_upl33_no_certificate_and_no_validator_is_401_with_challenge() -> None:
    """UPL-33, UPL-R18: mTLS required; a device that sent no token learns the scheme."""
    assert MTLS_ONLY.decide(ctx()) == Refuse(401, "no client certificate", (PLAIN, REALM))


def test_upl_r18_token_without_validator_is_invalid_token() -> None:
    """UPL-R18: a token the cloud cannot accept is refused with error="invalid_token"."""
    refusal = MTLS_ONLY.decide(ctx(token="tk"))
    assert refusal == Refuse(401, "no client certificate", (PLAIN,), "invalid_token")


def test_upl39_token_goes_to_the_validator_before_any_101() -> None:
    """UPL-39: the policy asks for validation instead of accepting; the token stays secret."""
    decision = TOKENS.decide(ctx(token="s3cret"))
    assert decision == ValidateToken("s3cret")
    assert "s3cret" not in repr(decision) and "s3cret" not in repr(ctx(token="s3cret"))


def test_upl37_38_validator_identity_is_accepted() -> None:
    """UPL-37, UPL-38: the identity the validator returns names the device."""
    c = ctx(token="tk")
    assert TOKENS.token_checked(c, "from-token") == Accept("from-token", AuthMethod.ACCESS_TOKEN)


@pytest.mark.parametrize(("identity", "error", "reason"), [
    (None, None, "invalid access token"),
    ("", None, "invalid access token"),
    (None, "expired", "invalid access token: expired"),
])
def test_upl39_r18_refused_token_is_401_invalid_token(identity: str | None, error: str | None,
                                                      reason: str) -> None:
    """UPL-39, UPL-R18: a refused token gets 401 with Bearer error="invalid_token" and no 101."""
    refusal = TOKENS.token_checked(ctx(token="tk"), identity, error)
    assert refusal == Refuse(401, reason, (PLAIN,), "invalid_token")
    assert refusal.body == (reason + "\n").encode()


def test_broken_validator_is_500_without_challenge() -> None:
    refusal = TOKENS.validator_failed(ctx(token="tk"))
    assert (refusal.status, refusal.bearer_error, refusal.headers) == (500, None, (PLAIN,))


def test_upl_r18_no_token_with_validator() -> None:
    """UPL-R18: a validator is configured but no token came: 401 with the realm challenge."""
    refusal = TOKENS.decide(ctx())
    assert refusal == Refuse(401, "no client certificate and no access token", (PLAIN, REALM))
    assert Authenticator(validates_tokens=True, allow_anonymous=True).decide(ctx()) == Accept(
        "cam-9", AuthMethod.NONE)


def test_anonymous_identity_falls_back_to_path_then_peer() -> None:
    assert OPEN.decide(ctx(target="/uplink/by-path/?x=1")) == Accept("by-path", AuthMethod.NONE)
    assert OPEN.decide(ctx(target="/")).identity == "10.0.0.5:4433"  # type: ignore[union-attr]
    assert fallback_identity(ctx(target="//a//b//")) == "b"


def test_identity_hook_overrides_every_method_unless_it_says_nothing() -> None:
    seen: list[UpgradeContext] = []

    def hook(c: UpgradeContext) -> str | None:
        seen.append(c)
        return f"site1/{c.client_cert_cn}" if c.client_cert_cn else None

    policy = Authenticator(validates_tokens=True, allow_anonymous=True, identity_hook=hook)
    assert policy.decide(ctx(cn="cam-3")) == Accept("site1/cam-3", AuthMethod.MTLS)
    assert policy.token_checked(ctx(token="t"), "tok-id") == Accept("tok-id",
                                                                    AuthMethod.ACCESS_TOKEN)
    assert policy.decide(ctx()) == Accept("cam-9", AuthMethod.NONE)
    assert len(seen) == 3


def test_websocket_uplinks_are_marked() -> None:
    """UPL-6, UPL-7: the protocol DeviceInfo shows follows the upgrade's transport."""
    assert OPEN.decide(ctx()).protocol == PROTOCOL_NATIVE  # type: ignore[union-attr]
    assert OPEN.decide(ctx(websocket=True)).protocol == PROTOCOL_WEBSOCKET  # type: ignore[union-attr]


def test_auth_method_values_are_the_mode_names() -> None:
    """UPL-36, UPL-40: DeviceInfo.auth shows the AuthorizationModes names (and "none")."""
    assert [m.value for m in AuthMethod] == ["mTLS", "AccessToken", "none"]


def test_upl33_39_anonymous_only_when_nothing_can_authenticate() -> None:
    """UPL-33, UPL-39: a cloud that checks certificates or tokens lets nobody in unproven."""
    assert anonymous_by_default(validates_tokens=False, verifies_certificates=False)
    assert not anonymous_by_default(validates_tokens=True, verifies_certificates=False)
    assert not anonymous_by_default(validates_tokens=False, verifies_certificates=True)
