"""The select filter: which Data items notifications carry (RQ-17, RQ-R12)."""

from __future__ import annotations

import re
from typing import Final

import attrs
from lxml import etree

from ..resources import Resource
from ._common import _bad, _children, _text
from .uri import normalize_scope

__all__ = ["SelectFilter"]

_PATH_RE: Final = re.compile(r"(?:/[^\W\d][\w.\-]*)+")


@attrs.frozen(slots=True)
class SelectFilter:
    """Which Data items notifications carry (RQ-17, RQ-R12).

    ``scope_paths`` holds lower-cased ONVIF scope-path prefixes (``('location',)``
    for ``/Scope/Location``); an empty prefix keeps every scope.
    """

    name: bool = False
    location: bool = False
    offline: bool = False
    scope_paths: tuple[tuple[str, ...], ...] = ()

    def keep_scope(self, scope: str) -> bool:
        """True when a ``/Scope`` path of the filter keeps this scope URI (RQ-R12)."""
        for path in self.scope_paths:
            if not path:
                return True
            n = normalize_scope(scope)
            if (n is not None and n[0] == "onvif" and n[1] == "www.onvif.org"
                    and tuple(s.lower() for s in n[2][: len(path)]) == path):
                return True
        return False

    def apply(self, resource: Resource) -> Resource:
        """``resource`` with the unselected Data items removed (Token always kept)."""
        scopes = resource.scopes
        if scopes and self.scope_paths != ((),):
            scopes = tuple(s for s in scopes if self.keep_scope(s))
        return Resource(
            resource.token, resource.kind,
            resource.name if self.name else None,
            resource.location if self.location else None,
            scopes,
            resource.offline if self.offline else None,
        )


def _parse_select(elem: etree._Element, now: float) -> SelectFilter:
    kids = _children(elem, ("Path",), now)
    paths = kids.get("Path", [])
    if not paths:
        raise _bad(elem, "SelectFilter needs at least one Path", now)
    name = location = offline = False
    scope_paths: list[tuple[str, ...]] = []
    for p in paths:
        text = _text(p)
        if len(p) or not _PATH_RE.fullmatch(text):
            raise _bad(elem, f"bad select Path {text[:100]!r} (RQ-R12)", now)
        steps = text.split("/")[1:]
        head, rest = steps[0], steps[1:]
        if head == "Scope":
            scope_paths.append(tuple(s.lower() for s in rest))
        elif rest:
            continue
        elif head == "Name":
            name = True
        elif head == "Location":
            location = True
        elif head == "Offline":
            offline = True
    return SelectFilter(name, location, offline, tuple(scope_paths))


def _merge_select(a: SelectFilter | None, b: SelectFilter) -> SelectFilter:
    if a is None:
        return b
    paths = a.scope_paths + tuple(p for p in b.scope_paths if p not in a.scope_paths)
    if () in paths:
        paths = ((),)
    return SelectFilter(a.name or b.name, a.location or b.location, a.offline or b.offline,
                        paths)
