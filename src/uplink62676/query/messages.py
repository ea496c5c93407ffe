"""Notification XML: ``wsnt:NotificationMessage`` for resource events (EVT-39..45, RQ-5..8).

Layout (events.md section 11, resource-query.md section 2, RQ-R2, EVT-R9):
``wsnt:Topic`` with the Concrete dialect and a ``tns1:`` topic, one
``tt:Message`` with ``UtcTime`` and ``PropertyOperation``, the ``Token``
Source item, then the Data SimpleItems (``Name``, every ``Scope``,
``Offline``) before the ``Location`` ElementItem holding one
``tt:GeoLocation``.  ``Deleted`` carries no Data (EVT-48).  The writer
appends to a parent whose ancestors declare ``wsnt``, ``tt`` and ``tns1``;
the reader accepts items in any order and resolves prefixes through the
in-scope namespaces.
"""

from __future__ import annotations

import math
from typing import Final

from lxml import etree

from ..errors import LocalProtocolError, RemoteProtocolError
from ..namespaces import TNS1, TT, WSA, WSNT
from .filters import CONCRETE, CONCRETE_SET
from .resources import GeoLocation, Notification, PropertyOperation, Resource
from .xstime import format_datetime, parse_datetime

__all__ = ["NSMAP", "append_notification", "parse_notification"]

#: Prefixes a container of notification messages must declare (EVT-R9).
NSMAP: Final = {"wsnt": WSNT, "tt": TT, "tns1": TNS1}

_NM: Final = f"{{{WSNT}}}NotificationMessage"
_TOPIC: Final = f"{{{WSNT}}}Topic"
_MSG: Final = f"{{{WSNT}}}Message"
_PRODUCER: Final = f"{{{WSNT}}}ProducerReference"
_ADDRESS: Final = f"{{{WSA}}}Address"
_TT_MSG: Final = f"{{{TT}}}Message"
_SOURCE: Final = f"{{{TT}}}Source"
_DATA: Final = f"{{{TT}}}Data"
_SIMPLE: Final = f"{{{TT}}}SimpleItem"
_ELEMENT: Final = f"{{{TT}}}ElementItem"
_GEO: Final = f"{{{TT}}}GeoLocation"
_OPS: Final = {op.value: op for op in PropertyOperation}


def _num(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "INF" if x > 0 else "-INF"
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


def append_notification(parent: etree._Element, note: Notification,
                        producer: str | None = None) -> etree._Element:
    """Append ``note`` as a ``wsnt:NotificationMessage`` child of ``parent``.

    ``producer`` is the address for ``wsnt:ProducerReference`` (EVT-40); the
    parent's ancestors must then also declare ``wsa``.
    """
    sub = etree.SubElement
    nm = sub(parent, _NM)
    topic = sub(nm, _TOPIC, Dialect=CONCRETE)
    topic.text = "tns1:" + note.topic
    if producer is not None:
        sub(sub(nm, _PRODUCER), _ADDRESS).text = producer
    msg = sub(sub(nm, _MSG), _TT_MSG, UtcTime=format_datetime(note.utc_time))
    if note.operation is not None:
        msg.set("PropertyOperation", note.operation.value)
    if note.token is not None:
        sub(sub(msg, _SOURCE), _SIMPLE, Name="Token", Value=note.token)
    res = note.data
    if res is not None and note.operation is not PropertyOperation.DELETED:
        data = sub(msg, _DATA)
        if res.name is not None:
            sub(data, _SIMPLE, Name="Name", Value=res.name)
        for scope in res.scopes:
            sub(data, _SIMPLE, Name="Scope", Value=scope)
        if res.offline is not None:
            sub(data, _SIMPLE, Name="Offline", Value="true" if res.offline else "false")
        loc = res.location
        if loc is not None:
            geo = sub(sub(data, _ELEMENT, Name="Location"), _GEO)
            if loc.lon is not None:
                geo.set("lon", _num(loc.lon))
            if loc.lat is not None:
                geo.set("lat", _num(loc.lat))
            if loc.elevation is not None:
                geo.set("elevation", _num(loc.elevation))
    return nm


def _opt_float(value: str | None) -> float | None:
    if value is None:
        return None
    s = value.strip().replace("INF", "inf")
    try:
        return float(s)
    except ValueError:
        raise RemoteProtocolError(f"bad number in tt:GeoLocation: {value!r}") from None


def _topic(elem: etree._Element) -> str:
    dialect = (elem.get("Dialect") or "").strip()
    if dialect not in (CONCRETE, CONCRETE_SET, ""):
        raise RemoteProtocolError(f"unknown topic dialect {dialect!r}")
    text = "".join(str(t) for t in elem.itertext()).strip()
    prefix, sep, path = text.partition(":")
    if not sep or elem.nsmap.get(prefix) != TNS1:
        raise RemoteProtocolError(f"topic {text!r} is not in the ONVIF topic namespace")
    return path


def parse_notification(nm: etree._Element) -> Notification:
    """Read one ``wsnt:NotificationMessage`` (client side).

    Raises :class:`RemoteProtocolError` for a message that breaks section 11.
    """
    topic_el = nm.find(_TOPIC)
    if topic_el is None:
        raise RemoteProtocolError("NotificationMessage without wsnt:Topic")
    topic = _topic(topic_el)
    msg = nm.find(f"{_MSG}/{_TT_MSG}")
    if msg is None:
        raise RemoteProtocolError("NotificationMessage without tt:Message")
    try:
        utc = parse_datetime(msg.get("UtcTime") or "")
    except LocalProtocolError:
        raise RemoteProtocolError(f"bad UtcTime {msg.get('UtcTime')!r}") from None
    op_text = msg.get("PropertyOperation")
    op = _OPS.get(op_text) if op_text is not None else None
    if op_text is not None and op is None:
        raise RemoteProtocolError(f"bad PropertyOperation {op_text!r}")
    token = None
    for item in msg.iterfind(f"{_SOURCE}/{_SIMPLE}"):
        if item.get("Name") == "Token":
            token = item.get("Value")
    if not topic.startswith("Resource/"):
        return Notification(topic, utc, op, token)
    if token is None or not token:
        raise RemoteProtocolError("resource event without a Token source item (RQ-6)")
    kind = topic[len("Resource/"):]
    if op is PropertyOperation.DELETED:
        return Notification(topic, utc, op, token)
    name: str | None = None
    scopes: list[str] = []
    offline: bool | None = None
    location: GeoLocation | None = None
    data = msg.find(_DATA)
    if data is not None:
        for item in data:
            tag, item_name = item.tag, item.get("Name")
            if tag == _SIMPLE:
                value = item.get("Value")
                if value is None:
                    continue
                if item_name == "Name":
                    name = value
                elif item_name == "Scope":
                    scopes.append(value)
                elif item_name == "Offline":
                    offline = value.strip() in ("true", "1")
            elif tag == _ELEMENT and item_name == "Location":
                geo = next((c for c in item if isinstance(c.tag, str)), None)
                location = GeoLocation(
                    _opt_float(geo.get("lon")) if geo is not None else None,
                    _opt_float(geo.get("lat")) if geo is not None else None,
                    _opt_float(geo.get("elevation")) if geo is not None else None,
                )
    try:
        res = Resource(token, kind, name, location, tuple(scopes), offline)
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"bad resource event: {exc}") from None
    return Notification(topic, utc, op, token, res)
