"""User-based access control for SOAP operations (config-service.md section 6; CFG-29..35).

Every operation has an *access class*; every requester has a *user level*
(``Administrator``, ``Operator``, ``User``, ``Extended``, ``Anonymous``) or,
on devices with user roles, a list of roles.  :class:`AccessPolicy` decides
whether a requester may use a class (default: IEC 60839-11-31 Table 7,
CFG-33) and :meth:`AccessPolicy.check` raises the ``env:Sender /
ter:NotAuthorized`` fault (HTTP 400, UPL-R19) whose text never depends on the
request or on stored data.

A request tunneled through an uplink carries the uplink's ``UserLevel``
(uplink.md UPL-41/UPL-42): a whitespace-separated list whose items each add
their permissions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

import attrs

from ..errors import ConfigurationError, SoapFault

__all__ = [
    "DEFAULT_POLICY",
    "PREDEFINED_ROLES",
    "AccessClass",
    "AccessPolicy",
    "UserLevel",
    "not_authorized",
    "requester_items",
    "validate_role_name",
]


class AccessClass(enum.Enum):
    """Impact class of an operation (CORE "User-based access control")."""

    PRE_AUTH = "PRE_AUTH"
    READ_SYSTEM = "READ_SYSTEM"
    READ_SYSTEM_SENSITIVE = "READ_SYSTEM_SENSITIVE"
    READ_SYSTEM_SECRET = "READ_SYSTEM_SECRET"  # noqa: S105 - a class name, not a secret
    WRITE_SYSTEM = "WRITE_SYSTEM"
    UNRECOVERABLE = "UNRECOVERABLE"
    READ_MEDIA = "READ_MEDIA"
    ACTUATE = "ACTUATE"


class UserLevel(enum.Enum):
    """``tt:UserLevel``: every user has exactly one (CFG-31)."""

    ADMINISTRATOR = "Administrator"
    OPERATOR = "Operator"
    USER = "User"
    EXTENDED = "Extended"
    ANONYMOUS = "Anonymous"


_A, _O, _U, _N = (
    UserLevel.ADMINISTRATOR,
    UserLevel.OPERATOR,
    UserLevel.USER,
    UserLevel.ANONYMOUS,
)

#: IEC 60839-11-31 Table 7 (CFG-33): access class -> levels allowed to use it.
#: ``Extended`` users get their permissions from roles, never from this table.
DEFAULT_POLICY_TABLE: Final[Mapping[AccessClass, frozenset[UserLevel]]] = MappingProxyType({
    AccessClass.PRE_AUTH: frozenset({_A, _O, _U, _N}),
    AccessClass.READ_SYSTEM: frozenset({_A, _O, _U}),
    AccessClass.READ_SYSTEM_SENSITIVE: frozenset({_A, _O}),
    AccessClass.READ_SYSTEM_SECRET: frozenset({_A}),
    AccessClass.WRITE_SYSTEM: frozenset({_A}),
    AccessClass.UNRECOVERABLE: frozenset({_A}),
    AccessClass.READ_MEDIA: frozenset({_A, _O, _U}),
    AccessClass.ACTUATE: frozenset({_A, _O}),
})

#: The non-editable roles of CFG-34, each equal to the level of the same name.
PREDEFINED_ROLES: Final[Mapping[str, UserLevel]] = MappingProxyType({
    "onvif:Administrator": UserLevel.ADMINISTRATOR,
    "onvif:Operator": UserLevel.OPERATOR,
    "onvif:User": UserLevel.USER,
})

_LEVEL_NAMES: Final = {level.value: level for level in UserLevel}


def validate_role_name(name: str) -> str:
    """Check a custom role name (CFG-34): no whitespace, not empty, ``onvif:`` reserved."""
    if not isinstance(name, str) or not name or any(ch.isspace() for ch in name):
        raise ConfigurationError(f"role name {name!r} must be non-empty and contain no spaces")
    if name.startswith("onvif:"):
        raise ConfigurationError(f"role name {name!r} uses the reserved prefix 'onvif:'")
    if name in _LEVEL_NAMES:
        raise ConfigurationError(f"role name {name!r} is a user level name")
    return name


def requester_items(requester: str | Iterable[str]) -> tuple[str, ...]:
    """Split a requester (a level, a ``tt:StringList`` string, or a sequence) into items."""
    if isinstance(requester, str):
        return tuple(requester.split())
    items: list[str] = []
    for part in requester:
        items.extend(str(part).split())
    return tuple(items)


def _freeze_roles(
    roles: Mapping[str, Iterable[AccessClass]],
) -> Mapping[str, frozenset[AccessClass]]:
    frozen: dict[str, frozenset[AccessClass]] = {}
    for name, classes in roles.items():
        validate_role_name(name)
        chosen = frozenset(classes)
        for cls in chosen:
            if not isinstance(cls, AccessClass):
                raise ConfigurationError(f"role {name!r}: {cls!r} is not an AccessClass")
        frozen[name] = chosen
    return MappingProxyType(frozen)


def _freeze_table(
    table: Mapping[AccessClass, Iterable[UserLevel]],
) -> Mapping[AccessClass, frozenset[UserLevel]]:
    frozen: dict[AccessClass, frozenset[UserLevel]] = {}
    for cls, levels in table.items():
        frozen[cls] = frozenset(levels)
    return MappingProxyType(frozen)


def not_authorized() -> SoapFault:
    """The ``env:Sender / ter:NotAuthorized`` fault (HTTP 400, UPL-R19, CFG-28).

    Its reason is the fixed text of Table 5, so a refusal reveals nothing
    about the request or the configuration.
    """
    return SoapFault("env:Sender", ("ter:NotAuthorized",), "Sender not Authorized")


@attrs.frozen(slots=True)
class AccessPolicy:
    """Which requester may use which access class (CFG-30, CFG-33, CFG-34).

    ``table`` maps classes to levels (default Table 7).  ``roles`` maps custom
    role names to the classes they grant; ``roles_supported`` says whether the
    device supports user roles (``MaxUserRoles`` > 0), which enables the
    predefined ``onvif:`` roles and the custom ones (CFG-35).
    """

    table: Mapping[AccessClass, frozenset[UserLevel]] = attrs.field(
        default=DEFAULT_POLICY_TABLE, converter=_freeze_table
    )
    roles: Mapping[str, frozenset[AccessClass]] = attrs.field(
        factory=dict, converter=_freeze_roles
    )
    roles_supported: bool = attrs.field(default=False)

    def __attrs_post_init__(self) -> None:
        if self.roles and not self.roles_supported:
            raise ConfigurationError("custom roles given but roles_supported is False")

    def _allows_item(self, item: str, access_class: AccessClass) -> bool:
        level = _LEVEL_NAMES.get(item)
        if level is None and self.roles_supported:
            level = PREDEFINED_ROLES.get(item)
            if level is None:
                return access_class in self.roles.get(item, frozenset())
        if level is None or level is UserLevel.EXTENDED:
            # Unknown names grant nothing; Extended rights come only from roles.
            return False
        return level in self.table.get(access_class, frozenset())

    def allows(self, requester: str | Sequence[str], access_class: AccessClass) -> bool:
        """True when any item of ``requester`` grants ``access_class``.

        ``PRE_AUTH`` is granted to everyone, including an empty requester
        (an unauthenticated ``Anonymous`` caller, CFG-31).
        """
        if access_class is AccessClass.PRE_AUTH and UserLevel.ANONYMOUS in self.table.get(
            AccessClass.PRE_AUTH, frozenset()
        ):
            return True
        items = requester_items(requester) or (UserLevel.ANONYMOUS.value,)
        return any(self._allows_item(item, access_class) for item in items)

    def check(self, requester: str | Sequence[str], access_class: AccessClass) -> None:
        """Raise :func:`not_authorized` unless ``requester`` may use ``access_class`` (CFG-30)."""
        if not self.allows(requester, access_class):
            raise not_authorized()

    def valid_uplink_level(self, item: str) -> bool:
        """May ``item`` appear in an uplink's ``UserLevel``? (CFG-R8, CFG-32, CFG-35).

        ``Administrator``, ``Operator`` and ``User`` always; predefined and
        custom roles only when roles are supported; never ``Anonymous`` or
        ``Extended``.
        """
        if item in ("Administrator", "Operator", "User"):
            return True
        if not self.roles_supported:
            return False
        return item in PREDEFINED_ROLES or item in self.roles


#: The default policy: Table 7, no user roles.
DEFAULT_POLICY: Final = AccessPolicy()
