"""Tests of user-based access control (config-service.md section 6: CFG-29..35, CFG-R3, CFG-R8)."""

from __future__ import annotations

import pytest

from uplink62676.errors import ConfigurationError, SoapFault
from uplink62676.services.access import (
    DEFAULT_POLICY,
    PREDEFINED_ROLES,
    AccessClass,
    AccessPolicy,
    UserLevel,
    not_authorized,
    requester_items,
    validate_role_name,
)
from uplink62676.services.uplink import OPERATION_ACCESS
from uplink62676.soap import fault_response, parse_fault

C = AccessClass
# IEC 60839-11-31 Table 7, written out independently of the implementation.
TABLE7 = {
    C.PRE_AUTH: {"Administrator", "Operator", "User", "Anonymous"},
    C.READ_SYSTEM: {"Administrator", "Operator", "User"},
    C.READ_SYSTEM_SENSITIVE: {"Administrator", "Operator"},
    C.READ_SYSTEM_SECRET: {"Administrator"},
    C.WRITE_SYSTEM: {"Administrator"},
    C.UNRECOVERABLE: {"Administrator"},
    C.READ_MEDIA: {"Administrator", "Operator", "User"},
    C.ACTUATE: {"Administrator", "Operator"},
}


@pytest.mark.parametrize("access_class", list(AccessClass))
@pytest.mark.parametrize("level", ["Administrator", "Operator", "User", "Anonymous"])
def test_default_policy_is_table_7(access_class: AccessClass, level: str) -> None:
    """CFG-33: a level may use a class iff the Table 7 cell is marked."""
    assert DEFAULT_POLICY.allows(level, access_class) == (level in TABLE7[access_class])


def test_operation_access_classes() -> None:
    """CFG-29, CFG-R3, OQ-37: GetServiceCapabilities PRE_AUTH, GetUplinks READ_SYSTEM, Set/Delete
    WRITE_SYSTEM.
    """
    assert OPERATION_ACCESS == {
        "GetServiceCapabilities": C.PRE_AUTH,
        "GetUplinks": C.READ_SYSTEM,
        "SetUplink": C.WRITE_SYSTEM,
        "DeleteUplink": C.WRITE_SYSTEM,
    }


def test_check_raises_not_authorized_with_http_400() -> None:
    """CFG-30, UPL-R19: refusal is env:Sender/ter:NotAuthorized, HTTP 400, fixed reason."""
    with pytest.raises(SoapFault) as info:
        DEFAULT_POLICY.check("User", C.WRITE_SYSTEM)
    fault = info.value
    assert (fault.code, fault.subcodes) == ("env:Sender", ("ter:NotAuthorized",))
    assert fault.reason == "Sender not Authorized"
    resp = fault_response(fault)
    assert resp.status == 400
    assert parse_fault(resp.body) == not_authorized()
    DEFAULT_POLICY.check("Administrator", C.WRITE_SYSTEM)  # no exception


def test_levels_are_the_five_of_core() -> None:
    """CFG-31: Administrator, Operator, User, Extended, Anonymous."""
    assert {lv.value for lv in UserLevel} == {
        "Administrator", "Operator", "User", "Extended", "Anonymous"}


def test_unauthenticated_requester_is_anonymous() -> None:
    """CFG-31: an empty requester is Anonymous: PRE_AUTH only."""
    assert DEFAULT_POLICY.allows("", C.PRE_AUTH)
    assert DEFAULT_POLICY.allows([], C.PRE_AUTH)
    assert not DEFAULT_POLICY.allows("", C.READ_SYSTEM)


def test_anonymous_and_extended_are_not_uplink_levels() -> None:
    """CFG-32, CFG-R8, OQ-17: no user can be put in the Anonymous level; Extended is refused too."""
    for policy in (DEFAULT_POLICY, AccessPolicy(roles_supported=True)):
        assert not policy.valid_uplink_level("Anonymous")
        assert not policy.valid_uplink_level("Extended")
        for level in ("Administrator", "Operator", "User"):
            assert policy.valid_uplink_level(level)


def test_extended_without_roles_has_no_rights() -> None:
    """CFG-31: Extended users get authorization from roles only."""
    for access_class in AccessClass:
        if access_class is not C.PRE_AUTH:
            assert not DEFAULT_POLICY.allows("Extended", access_class)


def test_predefined_roles_equal_their_levels() -> None:
    """CFG-34: onvif:Administrator/Operator/User are functionally equal to the levels."""
    policy = AccessPolicy(roles_supported=True)
    assert set(PREDEFINED_ROLES) == {"onvif:Administrator", "onvif:Operator", "onvif:User"}
    for role, level in PREDEFINED_ROLES.items():
        for access_class in AccessClass:
            assert policy.allows(role, access_class) == policy.allows(level.value, access_class)
    # without role support, a role name grants nothing beyond PRE_AUTH
    assert not DEFAULT_POLICY.allows("onvif:Administrator", C.READ_SYSTEM)


def test_custom_roles_and_several_roles_per_user() -> None:
    """CFG-34, CFG-35, UPL-42: custom roles grant their classes; several roles add up."""
    policy = AccessPolicy(
        roles={"PTZControl": {C.ACTUATE}, "Viewer": [C.READ_MEDIA]}, roles_supported=True)
    assert policy.allows("PTZControl", C.ACTUATE)
    assert not policy.allows("PTZControl", C.READ_MEDIA)
    assert policy.allows("Extended PTZControl Viewer", C.READ_MEDIA)
    assert policy.allows(["onvif:User", "PTZControl"], C.ACTUATE)
    assert not policy.allows("onvif:User PTZControl", C.WRITE_SYSTEM)
    assert policy.valid_uplink_level("PTZControl")
    assert not policy.valid_uplink_level("Nobody")


@pytest.mark.parametrize("name", ["onvif:Custom", "onvif:Administrator", "PTZ Control", "", "User"])
def test_role_names_are_validated(name: str) -> None:
    """CFG-34: the onvif: prefix is reserved; custom role names contain no spaces."""
    with pytest.raises(ConfigurationError):
        validate_role_name(name)
    with pytest.raises(ConfigurationError):
        AccessPolicy(roles={name: {C.READ_MEDIA}}, roles_supported=True)


def test_roles_need_role_support() -> None:
    """CFG-35: roles exist only when the device supports them (MaxUserRoles > 0)."""
    with pytest.raises(ConfigurationError):
        AccessPolicy(roles={"Viewer": {C.READ_MEDIA}})


def test_requester_items() -> None:
    """CFG-35: a requester is a level, a tt:StringList string, or a sequence."""
    assert requester_items("Operator") == ("Operator",)
    assert requester_items(" onvif:User  PTZ\n") == ("onvif:User", "PTZ")
    assert requester_items(["a b", "c"]) == ("a", "b", "c")


def test_custom_table() -> None:
    """CFG-30: the device decides from *its* access policy (the table is replaceable)."""
    strict = AccessPolicy(table={C.PRE_AUTH: {UserLevel.ADMINISTRATOR}})
    assert not strict.allows("Anonymous", C.PRE_AUTH)
    assert strict.allows("Administrator", C.PRE_AUTH)
    assert not strict.allows("Administrator", C.READ_SYSTEM)
