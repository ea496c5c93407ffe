"""Resource registry and property-event translation (resource-query.md sections 2-3).

A VSS registers each resource it exposes (remote token, kind, name, location,
scopes, offline flag).  Every mutation returns a :class:`ResourceChange`
(old state, new state, time); :func:`translate` turns a change into the
notification one subscription should see, by evaluating the subscription's
filter on both states (RQ-R3, OQ-41):

* not matching -> matching: ``Initialized`` (RQ-9);
* matching -> matching with a different view: ``Changed`` (RQ-11: an
  Offline transition counts only if the Offline item is selected);
* matching -> not matching, or removed: ``Deleted`` (RQ-10);
* anything else: nothing.

Resources are slotted frozen values so that 100,000 of them stay small;
scope tuples are interned so that the resources of one device share one.
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, Protocol

import attrs

from ..errors import InvalidTokenError, LocalProtocolError
from ..namespaces import TNS1
from ..tokens import RemoteToken

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "RESOURCE_KINDS",
    "GeoLocation",
    "Notification",
    "PropertyOperation",
    "Resource",
    "ResourceChange",
    "ResourceRegistry",
    "StateFilter",
    "initialized",
    "resource_topic",
    "translate",
]

#: Resource names of RQ-4 (media configurations and profiles), the forensic
#: example's VideoSource and the other ONVIF type names of RQ-R1.
RESOURCE_KINDS: Final = (
    "VideoSourceConfiguration", "AudioSourceConfiguration", "VideoEncoderConfiguration",
    "AudioEncoderConfiguration", "AudioOutputConfiguration", "AudioDecoderConfiguration",
    "MetadataConfiguration", "AnalyticsConfiguration", "PTZConfiguration", "OSDConfiguration",
    "MaskConfiguration", "MediaProfile", "VideoSource", "AudioSource", "AudioOutput", "PTZNode",
    "DigitalInput", "RelayOutput", "Recording", "Track", "RecordingJob",
)


class PropertyOperation(enum.Enum):
    """The ``PropertyOperation`` attribute of a property notification (EVT-47)."""

    INITIALIZED = "Initialized"
    CHANGED = "Changed"
    DELETED = "Deleted"


_XML_TEXT: Final = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def _xml_ok(value: str, what: str) -> None:
    if not _XML_TEXT.fullmatch(value):
        raise LocalProtocolError(f"{what} has characters XML cannot carry: {value!r}")


def _check_token(_inst: object, _attr: object, value: str) -> None:
    """A resource is named by a remote token ``Prefix:LocalToken`` (RQ-6, TOK-1, TOK-7)."""
    if not isinstance(value, str) or not value:
        raise LocalProtocolError(f"resource token must be a non-empty string, got {value!r}")
    try:
        RemoteToken.parse(value)
    except InvalidTokenError as exc:
        raise LocalProtocolError(f"resource token must be a remote token "
                                 f"(Prefix:LocalToken, at most 64 characters): {exc}") from None


def _check_name(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None:
        if not isinstance(value, str):
            raise LocalProtocolError(f"resource name must be a string or None, got {value!r}")
        _xml_ok(value, "resource name")


def _check_kind(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        raise LocalProtocolError(f"resource kind must be an NCName topic leaf, got {value!r}")


def _check_offline(_inst: object, _attr: object, value: bool | None) -> None:
    if value is not None and not isinstance(value, bool):
        raise LocalProtocolError(f"offline must be True, False or None, got {value!r}")


def _intern_scopes(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise LocalProtocolError(f"scopes must be a sequence of URIs, got the string {value!r}")
    raw = tuple(value)
    if not all(type(s) is str for s in raw):
        raise LocalProtocolError(f"scopes must be strings, got {raw!r}")
    for s in raw:
        _xml_ok(s, "scope")
    scopes = tuple(sys.intern(s) for s in raw)
    return _SCOPE_TUPLES.setdefault(scopes, scopes) if len(_SCOPE_TUPLES) < 65536 else scopes


_SCOPE_TUPLES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _opt_float(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LocalProtocolError(f"coordinate must be a number or None, got {value!r}")
    return float(value)


@attrs.frozen(slots=True)
class GeoLocation:
    """A ``tt:GeoLocation``: degrees on WGS 84 and metres above sea level.

    ``lon`` or ``lat`` missing makes the location unknown for the location
    filter (RQ-R2).
    """

    lon: float | None = attrs.field(default=None, converter=_opt_float)
    lat: float | None = attrs.field(default=None, converter=_opt_float)
    elevation: float | None = attrs.field(default=None, converter=_opt_float)

    @property
    def known(self) -> bool:
        """True when both ``lon`` and ``lat`` are present; otherwise the location counts as unknown
        (RQ-R2).
        """
        return self.lon is not None and self.lat is not None


@attrs.frozen(slots=True)
class Resource:
    """One resource as reported in its property event (RQ-5..RQ-8).

    ``token`` is the remote token (Source item ``Token``); ``kind`` the topic
    leaf (``MediaProfile`` for ``tns1:Resource/MediaProfile``).  ``None`` /
    empty fields are Data items that are not reported (RQ-7).
    """

    token: str = attrs.field(validator=_check_token)
    kind: str = attrs.field(default="MediaProfile", validator=_check_kind)
    name: str | None = attrs.field(default=None, validator=_check_name)
    location: GeoLocation | None = None
    scopes: tuple[str, ...] = attrs.field(default=(), converter=_intern_scopes)
    offline: bool | None = attrs.field(default=None, validator=_check_offline)

    @property
    def topic(self) -> str:
        """Topic path below ``tns1``: ``Resource/<kind>``."""
        return f"Resource/{self.kind}"


def resource_topic(kind: str) -> tuple[str, tuple[str, ...]]:
    """``(namespace, steps)`` of the topic ``tns1:Resource/<kind>``."""
    return TNS1, ("Resource", kind)


@attrs.frozen(slots=True)
class ResourceChange:
    """A mutation of the registry: ``old`` is ``None`` for an addition, ``new`` for a removal."""

    old: Resource | None
    new: Resource | None
    utc_time: float

    @property
    def token(self) -> str:
        """The token of the resource that changed."""
        res = self.new if self.new is not None else self.old
        assert res is not None
        return res.token


@attrs.frozen(slots=True)
class Notification:
    """A notification as a pull point delivers it (events.md section 11).

    ``topic`` is the path below ``tns1`` (``Resource/MediaProfile``,
    ``EventBuffer/Begin``).  ``data`` is the resource as the subscription's
    select filter shows it; ``None`` for ``Deleted`` (EVT-48) and for
    non-property events.
    """

    topic: str
    utc_time: float
    operation: PropertyOperation | None = None
    token: str | None = None
    data: Resource | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        """Property identity: topic + Source (EVT R8 coalescing key)."""
        return self.topic, self.token


class StateFilter(Protocol):
    """What :func:`translate` needs from a compiled filter."""

    def matches(self, resource: Resource) -> bool:
        """True when a resource in this state belongs to the subscription's set."""

    def view(self, resource: Resource) -> Resource:
        """The resource as the subscriber sees it (selected Data only)."""


def translate(change: ResourceChange, flt: StateFilter | None,
              changed_only: bool = False) -> Notification | None:
    """The notification one subscription gets for ``change`` (RQ-R3), or ``None``.

    ``changed_only`` applies ``tev:ChangedOnly`` (EVT-16: no Initialized, no
    Deleted).
    """
    old, new = change.old, change.new
    if flt is None:
        old_in, new_in = old is not None, new is not None
    else:
        old_in = old is not None and flt.matches(old)
        new_in = new is not None and flt.matches(new)
    if new_in:
        assert new is not None
        view = new if flt is None else flt.view(new)
        if not old_in:
            if changed_only:
                return None
            return Notification(new.topic, change.utc_time, PropertyOperation.INITIALIZED,
                                new.token, view)
        assert old is not None
        if (old if flt is None else flt.view(old)) == view:
            return None
        return Notification(new.topic, change.utc_time, PropertyOperation.CHANGED,
                            new.token, view)
    if old_in and not changed_only:
        assert old is not None
        return Notification(old.topic, change.utc_time, PropertyOperation.DELETED, old.token)
    return None


def initialized(resource: Resource, flt: StateFilter | None, now: float) -> Notification:
    """The ``Initialized`` report of ``resource`` (initial set and synchronization, EVT-37)."""
    view = resource if flt is None else flt.view(resource)
    return Notification(resource.topic, now, PropertyOperation.INITIALIZED, resource.token, view)


class ResourceRegistry:
    """The resources a server exposes, by remote token.

    Mutators return the :class:`ResourceChange` they caused (``None`` when
    nothing changed) so the caller can fan it out to pull points.
    """

    __slots__ = ("_items",)

    def __init__(self, resources: Iterable[Resource] = ()) -> None:
        self._items: dict[str, Resource] = {r.token: r for r in resources}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._items.values())

    def __contains__(self, token: object) -> bool:
        return token in self._items

    def get(self, token: str) -> Resource | None:
        """The current state of ``token``, or ``None``."""
        return self._items.get(token)

    def tokens(self) -> list[str]:
        """A snapshot of all tokens, in registration order."""
        return list(self._items)

    def put(self, resource: Resource, now: float) -> ResourceChange | None:
        """Add ``resource`` or replace the state of its token (RQ-9 / Changed)."""
        old = self._items.get(resource.token)
        if old == resource:
            return None
        if old is not None and old.kind != resource.kind:
            raise LocalProtocolError(
                f"resource {resource.token!r} cannot change kind from {old.kind!r} to "
                f"{resource.kind!r}; remove it first"
            )
        self._items[resource.token] = resource
        return ResourceChange(old, resource, now)

    def update(self, token: str, now: float, **changes: object) -> ResourceChange | None:
        """Change some fields of an existing resource (``name=...``, ``location=...``)."""
        old = self._items.get(token)
        if old is None:
            raise LocalProtocolError(f"no resource with token {token!r}")
        try:
            new = attrs.evolve(old, **changes)  # type: ignore[arg-type]
        except TypeError as exc:
            raise LocalProtocolError(f"bad resource update {changes!r}: {exc}") from None
        return self.put(new, now)

    def set_offline(self, token: str, offline: bool, now: float) -> ResourceChange | None:
        """Online/offline transition of a resource's device (RQ-11)."""
        return self.update(token, now, offline=offline)

    def remove(self, token: str, now: float) -> ResourceChange | None:
        """Remove ``token`` (RQ-10); ``None`` if it was not registered."""
        old = self._items.pop(token, None)
        return None if old is None else ResourceChange(old, None, now)
