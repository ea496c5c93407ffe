"""The ONVIF event service with resource queries: SOAP bytes in, SOAP bytes out.

Operations (events.md section 1): GetServiceCapabilities, GetEventProperties
and CreatePullPointSubscription at the service path; PullMessages, Seek,
SetSynchronizationPoint, Renew and Unsubscribe at each pull point's own path
``<pullpoint_path>/<id>`` (also ``<pullpoint_path>?id=<id>``, and by
``wsa:To`` as a fallback, EVT-R1).  Pull-point addresses are built from the
request's scheme and authority, so over an uplink they name the uplink's
``:authority`` (UPL-R21).

Because PullMessages is a long poll, :meth:`EventService.handle` returns
either a :class:`~uplink62676.soap.SoapResponse` or a :class:`PendingResponse`.
The adapter keeps the request open and learns its answer from the
``(PendingResponse, SoapResponse)`` pairs returned by
:meth:`EventService.handle_timeout` (call it at :meth:`EventService.next_deadline`)
and by the resource-update methods.  Nothing here does I/O; ``now`` is
wall-clock seconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final
from urllib.parse import parse_qs, urlsplit

import attrs
from lxml import etree

from ..errors import LocalProtocolError, SoapFault
from ..namespaces import TEV, TNS1, TT, WSA, WSNT, WSTOP, XS
from ..query.faults import base_fault
from ..query.filters import (
    CONCRETE,
    CONCRETE_SET,
    ITEM_FILTER,
    ResourceFilter,
    Topic,
    compile_filter,
)
from ..query.messages import NSMAP, append_notification
from ..query.pullpoint import (
    PendingPull,
    PullCompleted,
    PullPointManager,
    PullPointSettings,
    PullResult,
)
from ..query.resources import Resource, ResourceRegistry
from ..query.xstime import format_datetime, parse_datetime, parse_duration
from ..soap import (
    SOAP_CONTENT_TYPE,
    SoapResponse,
    build_envelope,
    fault_envelope,
    generic_fault,
    http_error_response,
    parse_envelope,
)
from .access import DEFAULT_POLICY, AccessClass, AccessPolicy

__all__ = [
    "ACTIONS",
    "EventService",
    "EventServiceSettings",
    "Headers",
    "PendingResponse",
]

_EP = "http://www.onvif.org/ver10/events/wsdl/EventPortType/"
_PP = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/"
_SM = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/"
FAULT_ACTION: Final = "http://www.w3.org/2005/08/addressing/soap/fault"

#: Operation QName -> (output action, access class, served at a pull point) (EVT-4).
ACTIONS: Final[Mapping[str, tuple[str, AccessClass, bool]]] = {
    f"{{{TEV}}}GetServiceCapabilities": (
        _EP + "GetServiceCapabilitiesResponse", AccessClass.PRE_AUTH, False),
    f"{{{TEV}}}GetEventProperties": (
        _EP + "GetEventPropertiesResponse", AccessClass.READ_MEDIA, False),
    f"{{{TEV}}}CreatePullPointSubscription": (
        _EP + "CreatePullPointSubscriptionResponse", AccessClass.READ_MEDIA, False),
    f"{{{TEV}}}PullMessages": (_PP + "PullMessagesResponse", AccessClass.READ_MEDIA, True),
    f"{{{TEV}}}Seek": (_PP + "SeekResponse", AccessClass.READ_MEDIA, True),
    f"{{{TEV}}}SetSynchronizationPoint": (
        _PP + "SetSynchronizationPointResponse", AccessClass.READ_MEDIA, True),
    f"{{{WSNT}}}Unsubscribe": (_SM + "UnsubscribeResponse", AccessClass.READ_MEDIA, True),
    f"{{{WSNT}}}Renew": (_SM + "RenewResponse", AccessClass.READ_MEDIA, True),
}

_XSI_NIL: Final = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_TOPIC_NS: Final = "http://www.onvif.org/onvif/ver10/topics/topicns.xml"
_SCHEMA_LOCATION: Final = "http://www.onvif.org/onvif/ver10/schema/onvif.xsd"


@attrs.frozen(slots=True)
class EventServiceSettings:
    """Where the service lives, what it announces, and its pull-point limits.

    ``resource_kinds`` are the ``tns1:Resource/<kind>`` topics announced by
    GetEventProperties (RQ-3).  ``location_metric`` and ``use_height`` are
    the location-filter options of RQ-R7.
    """

    service_path: str = "/onvif/events_service"
    pullpoint_path: str = "/onvif/events/pullpoint"
    resource_kinds: tuple[str, ...] = ("MediaProfile", "VideoSource")
    pullpoints: PullPointSettings = attrs.field(factory=PullPointSettings)
    location_metric: str = attrs.field(default="wgs84")
    use_height: bool = False
    producer_reference: bool = True

    @location_metric.validator
    def _check_metric(self, _a: object, value: str) -> None:
        if value not in ("wgs84", "haversine"):
            raise LocalProtocolError(f"location_metric must be wgs84 or haversine, got {value!r}")


@attrs.define(slots=True, eq=False)
class PendingResponse:
    """A PullMessages request waiting for messages or its timeout."""

    pull: PendingPull
    relates_to: str | None
    producer: str | None = None

    @property
    def deadline(self) -> float:
        """The latest time by which the answer is due."""
        return self.pull.deadline


def _el(tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    e = etree.Element(tag, attrib)
    if text is not None:
        e.text = text
    return e


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    e = etree.SubElement(parent, tag)
    if text is not None:
        e.text = text
    return e


def _text(elem: etree._Element | None) -> str | None:
    if elem is None:
        return None
    return "".join(str(t) for t in elem.itertext()).strip()


Headers = Iterable[tuple[str | bytes, str | bytes]] | Mapping[str, str]


def _header_value(headers: Headers, name: str) -> str | None:
    """First value of header ``name`` (str or bytes pairs, as h11/h2 give them)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        k = key.decode("latin-1") if isinstance(key, bytes) else key
        if k.lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else value
    return None


class EventService:
    """Event service of a VSS: a :class:`PullPointManager` behind a SOAP face."""

    def __init__(
        self,
        manager: PullPointManager | None = None,
        config: EventServiceSettings | None = None,
        *,
        policy: AccessPolicy = DEFAULT_POLICY,
    ) -> None:
        self.config = config if config is not None else EventServiceSettings()
        self.manager = manager if manager is not None else PullPointManager(
            config=self.config.pullpoints)
        self.policy = policy
        self._pending: dict[PendingPull, PendingResponse] = {}
        self._deferred: list[tuple[PendingResponse, SoapResponse]] = []
        topics: set[Topic] = {(TNS1, ("Resource", k)) for k in self.config.resource_kinds}
        if self.manager.persistent_storage:
            topics.add((TNS1, ("EventBuffer", "Begin")))
        self._topics = frozenset(topics)

    @property
    def registry(self) -> ResourceRegistry:
        """The resources this service reports."""
        return self.manager.registry

    # ------------------------------------------------------------------ adapter face

    def next_deadline(self) -> float | None:
        """When to call :meth:`handle_timeout` next."""
        return self.manager.next_deadline()

    def handle_timeout(self, now: float) -> list[tuple[PendingResponse, SoapResponse]]:
        """Answer polls whose timeout passed; expire abandoned pull points."""
        return self._finish(self.manager.handle_timeout(now))

    def cancel(self, pending: PendingResponse) -> None:
        """The request of ``pending`` went away (stream reset, connection closed)."""
        self._pending.pop(pending.pull, None)
        self.manager.cancel(pending.pull)

    def put_resource(self, resource: Resource, now: float
                     ) -> list[tuple[PendingResponse, SoapResponse]]:
        """Add or replace a resource; returns the polls this answered."""
        return self._finish(self.manager.put_resource(resource, now))

    def update_resource(self, token: str, now: float, **changes: object
                        ) -> list[tuple[PendingResponse, SoapResponse]]:
        """Change fields of a resource; returns the polls this answered."""
        return self._finish(self.manager.update_resource(token, now, **changes))

    def set_offline(self, token: str, offline: bool, now: float
                    ) -> list[tuple[PendingResponse, SoapResponse]]:
        """Online/offline transition (RQ-11); returns the polls this answered."""
        return self._finish(self.manager.set_offline(token, offline, now))

    def remove_resource(self, token: str, now: float
                        ) -> list[tuple[PendingResponse, SoapResponse]]:
        """Remove a resource (RQ-10); returns the polls this answered."""
        return self._finish(self.manager.remove_resource(token, now))

    def _finish(self, done: Iterable[PullCompleted]) -> list[tuple[PendingResponse, SoapResponse]]:
        out = []
        for c in done:
            waiting = self._pending.pop(c.pending, None)
            if waiting is None:
                continue
            if isinstance(c.result, SoapFault):
                out.append((waiting, self._fault(c.result, waiting.relates_to)))
            else:
                out.append((waiting, self._pull_response(c.result, waiting.relates_to,
                                                         waiting.producer)))
        return out

    # ------------------------------------------------------------------ requests

    def handle(
        self,
        method: str,
        path: str,
        headers: Headers,
        body: bytes,
        now: float,
        *,
        requester: str | Sequence[str] | None = None,
        client: str | None = None,
    ) -> SoapResponse | PendingResponse:
        """Serve one HTTP request.

        ``headers`` may hold HTTP/2 pseudo-headers (``:scheme``, ``:authority``)
        or ``Host``; they build the pull-point addresses.  ``requester`` is the
        user level / roles for the access check (``None``: the adapter already
        authorized the request); ``client`` keys the per-client pull-point limit.
        """
        if method.upper() != "POST":
            return http_error_response(405)
        content_type = _header_value(headers, "content-type")
        if content_type is not None and not any(
                m in content_type.lower() for m in ("soap+xml", "text/xml", "application/xml")):
            return http_error_response(415)
        if not body:
            return http_error_response(400)
        relates: str | None = None
        try:
            envelope = parse_envelope(body)
            for h in envelope.headers:
                if h.tag == f"{{{WSA}}}MessageID":
                    relates = _text(h)
            op = envelope.operation
            spec = ACTIONS.get(op)
            if spec is None:
                raise generic_fault("ter:ActionNotSupported")
            action, access, at_pullpoint = spec
            if requester is not None:
                self.policy.check(requester, access)
            target = self._pull_point_id(path, envelope.headers)
            if at_pullpoint:
                if target is None:
                    raise self._unknown(now)
                producer = (self._base_url(headers) + self.config.service_path
                            if self.config.producer_reference else None)
                return self._pull_point_op(op, target, envelope.body, action=action,
                                           relates=relates, now=now, producer=producer)
            if target is not None or not self._is_service_path(path):
                raise generic_fault("ter:ActionNotSupported")
            if op == f"{{{TEV}}}GetServiceCapabilities":
                result = self._capabilities()
            elif op == f"{{{TEV}}}GetEventProperties":
                result = self._event_properties()
            else:
                result = self._create(envelope.body, headers, now, client)
            return self._ok(result, action, relates)
        except SoapFault as fault:
            return self._fault(fault, relates)

    @staticmethod
    def _base_url(headers: Headers) -> str:
        """``scheme://authority`` of the request (UPL-R21: the uplink's ``:authority``)."""
        scheme = _header_value(headers, ":scheme") or "http"
        authority = _header_value(headers, ":authority") or _header_value(headers, "host") \
            or "localhost"
        return f"{scheme}://{authority}"

    def _is_service_path(self, path: str) -> bool:
        return urlsplit(path).path.rstrip("/") == self.config.service_path.rstrip("/")

    def _pull_point_id(self, path: str, headers: Sequence[etree._Element]) -> str | None:
        found = self._id_from_url(path)
        if found is not None:
            return found
        for h in headers:
            if h.tag == f"{{{WSA}}}To":
                return self._id_from_url(_text(h) or "")
        return None

    def _id_from_url(self, url: str) -> str | None:
        parts = urlsplit(url)
        base = self.config.pullpoint_path.rstrip("/")
        p = parts.path.rstrip("/")
        if p.startswith(base + "/") and "/" not in p[len(base) + 1:]:
            return p[len(base) + 1:] or None
        if p == base:
            ids = parse_qs(parts.query).get("id")
            return ids[0] if ids else None
        return None

    def _unknown(self, now: float) -> SoapFault:
        return base_fault("wsrf-r:ResourceUnknownFault", "unknown or expired pull point", now)

    # ------------------------------------------------------------------ responses

    def _headers(self, action: str, relates: str | None) -> list[etree._Element]:
        out = [_el(f"{{{WSA}}}Action", action)]
        if relates:
            out.append(_el(f"{{{WSA}}}RelatesTo", relates))
        return out

    def _ok(self, body: etree._Element, action: str, relates: str | None) -> SoapResponse:
        data = build_envelope(body, self._headers(action, relates), nsmap={"wsa": WSA})
        return SoapResponse(200, (("content-type", SOAP_CONTENT_TYPE),), data)

    def _fault(self, fault: SoapFault, relates: str | None) -> SoapResponse:
        data = fault_envelope(fault, self._headers(FAULT_ACTION, relates))
        return SoapResponse(fault.http_status, (("content-type", SOAP_CONTENT_TYPE),), data)

    def _capabilities(self) -> etree._Element:
        resp = etree.Element(f"{{{TEV}}}GetServiceCapabilitiesResponse", nsmap={"tev": TEV})
        resp.append(self.service_capabilities())
        return resp

    def service_capabilities(self) -> etree._Element:
        """A fresh ``tev:Capabilities`` (events.md §2), also for GetServices (DEV-7)."""
        cfg = self.manager.config
        caps = etree.Element(f"{{{TEV}}}Capabilities", nsmap={"tev": TEV})
        caps.set("WSSubscriptionPolicySupport", "false")
        caps.set("WSPullPointSupport", "true")  # the service's only delivery mode (event.wsdl)
        caps.set("WSPausableSubscriptionManagerInterfaceSupport", "false")
        caps.set("MaxNotificationProducers", "0")
        caps.set("MaxPullPoints", str(cfg.max_pull_points))
        caps.set("PersistentNotificationStorage",
                 "true" if self.manager.persistent_storage else "false")
        return caps

    def _event_properties(self) -> etree._Element:
        """GetEventProperties (EVT-5..EVT-9, EVT-53, RQ-3), laid out as events.md 17.1."""
        nsmap = {"tev": TEV, "wsnt": WSNT, "wstop": WSTOP, "tt": TT, "tns1": TNS1, "xs": XS}
        resp = etree.Element(f"{{{TEV}}}GetEventPropertiesResponse", nsmap=nsmap)
        _sub(resp, f"{{{TEV}}}TopicNamespaceLocation", _TOPIC_NS)
        _sub(resp, f"{{{WSNT}}}FixedTopicSet", "true")
        topic_set = etree.SubElement(resp, f"{{{WSTOP}}}TopicSet", nsmap={None: ""})  # type: ignore[dict-item]
        resource = _sub(topic_set, f"{{{TNS1}}}Resource")
        for kind in self.config.resource_kinds:
            leaf = _sub(resource, kind)
            leaf.set(f"{{{WSTOP}}}topic", "true")
            _message_description(leaf, prop=True)
        if self.manager.persistent_storage:
            buf = _sub(topic_set, f"{{{TNS1}}}EventBuffer")
            begin = _sub(buf, "Begin")
            begin.set(f"{{{WSTOP}}}topic", "true")
            _message_description(begin, prop=False)
        _sub(resp, f"{{{WSNT}}}TopicExpressionDialect", CONCRETE)
        _sub(resp, f"{{{WSNT}}}TopicExpressionDialect", CONCRETE_SET)
        _sub(resp, f"{{{TEV}}}MessageContentFilterDialect", ITEM_FILTER)
        _sub(resp, f"{{{TEV}}}MessageContentSchemaLocation", _SCHEMA_LOCATION)
        return resp

    # ------------------------------------------------------------------ subscribe

    def _create(self, body: etree._Element, headers: Headers,
                now: float, client: str | None) -> etree._Element:
        """CreatePullPointSubscription (EVT-11..EVT-19, EVT-61, RQ-12)."""
        flt_elem: etree._Element | None = None
        termination: str | None = None
        changed_only = False
        for child in body:
            if not isinstance(child.tag, str):
                continue
            if child.tag == f"{{{TEV}}}Filter":
                flt_elem = child
            elif child.tag == f"{{{TEV}}}InitialTerminationTime":
                if child.get(_XSI_NIL, "").strip() not in ("true", "1"):
                    termination = _text(child) or ""
            elif child.tag == f"{{{TEV}}}SubscriptionPolicy":
                for policy in child:
                    if not isinstance(policy.tag, str):
                        continue
                    if policy.tag == f"{{{TEV}}}ChangedOnly":
                        changed_only = (_text(policy) or "true") not in ("false", "0")
                    else:
                        raise base_fault("wsnt:UnrecognizedPolicyRequestFault",
                                         f"unknown subscription policy {policy.tag}", now)
            elif etree.QName(child).namespace == TEV:
                raise generic_fault("ter:InvalidArgs")
        cfg = self.config
        flt: ResourceFilter = compile_filter(
            flt_elem, now=now, known_topics=self._topics,
            metric="haversine" if cfg.location_metric == "haversine" else "wgs84",
            use_height=cfg.use_height)
        sub = self.manager.create(flt, now, initial_termination=termination, client=client,
                                  changed_only=changed_only)
        address = f"{self._base_url(headers)}{cfg.pullpoint_path.rstrip('/')}/{sub.id}"
        resp = etree.Element(f"{{{TEV}}}CreatePullPointSubscriptionResponse",
                             nsmap={"tev": TEV, "wsnt": WSNT, "wsa": WSA})
        ref = _sub(resp, f"{{{TEV}}}SubscriptionReference")
        _sub(ref, f"{{{WSA}}}Address", address)
        _sub(resp, f"{{{WSNT}}}CurrentTime", format_datetime(now))
        _sub(resp, f"{{{WSNT}}}TerminationTime", format_datetime(sub.termination_time))
        return resp

    # ------------------------------------------------------------------ pull points

    def _pull_point_op(self, op: str, target: str, body: etree._Element, *, action: str,
                       relates: str | None, now: float,
                       producer: str | None) -> SoapResponse | PendingResponse:
        mgr = self.manager
        if op == f"{{{TEV}}}PullMessages":
            timeout, limit = self._pull_args(body, now)
            got = mgr.pull(target, now, timeout=timeout, message_limit=limit)
            if isinstance(got, PullResult):
                return self._pull_response(got, relates, producer)
            pending = PendingResponse(got, relates, producer)
            self._pending[got] = pending
            return pending
        if op == f"{{{TEV}}}SetSynchronizationPoint":
            done = mgr.set_synchronization_point(target, now)
            resp = self._ok(etree.Element(f"{{{TEV}}}SetSynchronizationPointResponse",
                                          nsmap={"tev": TEV}), action, relates)
            self._deferred += self._finish(done)
            return resp
        if op == f"{{{TEV}}}Seek":
            if not mgr.persistent_storage:
                raise generic_fault("ter:ActionNotSupported")
            when_el = body.find(f"{{{TEV}}}UtcTime")
            try:
                when = parse_datetime(_text(when_el) or "")
            except LocalProtocolError:
                raise generic_fault("ter:InvalidArgs") from None
            reverse = (_text(body.find(f"{{{TEV}}}Reverse")) or "false") in ("true", "1")
            self._deferred += self._finish(mgr.seek(target, now, when, reverse))
            return self._ok(etree.Element(f"{{{TEV}}}SeekResponse", nsmap={"tev": TEV}),
                            action, relates)
        if op == f"{{{WSNT}}}Renew":
            tt_el = body.find(f"{{{WSNT}}}TerminationTime")
            value = None
            if tt_el is not None and tt_el.get(_XSI_NIL, "").strip() not in ("true", "1"):
                value = _text(tt_el) or ""
            sub = mgr.renew(target, now, value)
            renewed = etree.Element(f"{{{WSNT}}}RenewResponse", nsmap={"wsnt": WSNT})
            _sub(renewed, f"{{{WSNT}}}TerminationTime", format_datetime(sub.termination_time))
            _sub(renewed, f"{{{WSNT}}}CurrentTime", format_datetime(now))
            return self._ok(renewed, action, relates)
        # Unsubscribe
        self._deferred += self._finish(mgr.unsubscribe(target, now))
        return self._ok(etree.Element(f"{{{WSNT}}}UnsubscribeResponse", nsmap={"wsnt": WSNT}),
                        action, relates)

    def _pull_args(self, body: etree._Element, now: float) -> tuple[float, int]:
        """Timeout and MessageLimit with the faults of EVT-R2."""
        t_el = body.find(f"{{{TEV}}}Timeout")
        l_el = body.find(f"{{{TEV}}}MessageLimit")
        if t_el is None or l_el is None:
            raise generic_fault("ter:InvalidArgs")
        try:
            duration = parse_duration(_text(t_el) or "")
        except LocalProtocolError:
            raise generic_fault("ter:InvalidArgs") from None
        if duration.negative and not duration.is_zero:
            raise generic_fault("ter:InvalidArgVal")
        timeout = abs(duration.length_from(now))
        limit_text = _text(l_el) or ""
        try:
            limit = int(limit_text)
        except ValueError:
            raise generic_fault("ter:InvalidArgs") from None
        if not -(2**31) <= limit < 2**31:
            raise generic_fault("ter:InvalidArgs")
        return timeout, limit

    def _pull_response(self, result: PullResult, relates: str | None,
                       producer: str | None = None) -> SoapResponse:
        """PullMessagesResponse (EVT-26, section 11): times, then the messages."""
        nsmap = {"tev": TEV, **NSMAP}
        if producer is not None:
            nsmap["wsa"] = WSA
        resp = etree.Element(f"{{{TEV}}}PullMessagesResponse", nsmap=nsmap)
        _sub(resp, f"{{{TEV}}}CurrentTime", format_datetime(result.current_time))
        _sub(resp, f"{{{TEV}}}TerminationTime", format_datetime(result.termination_time))
        for note in result.messages:
            append_notification(resp, note, producer)
        return self._ok(resp, ACTIONS[f"{{{TEV}}}PullMessages"][0], relates)

    def take_completed(self) -> list[tuple[PendingResponse, SoapResponse]]:
        """Polls answered as a side effect of the last :meth:`handle` call.

        SetSynchronizationPoint, Seek and Unsubscribe can complete a poll that
        is blocked on the same pull point; the adapter collects those answers
        here after every :meth:`handle`.
        """
        out, self._deferred = self._deferred, []
        return out


def _message_description(parent: etree._Element, *, prop: bool) -> None:
    """``tt:MessageDescription`` of the resource event (section 2, OQ-35) or EventBuffer/Begin."""
    md = _sub(parent, f"{{{TT}}}MessageDescription")
    md.set("IsProperty", "true" if prop else "false")
    if not prop:
        return
    src = _sub(md, f"{{{TT}}}Source")
    d = _sub(src, f"{{{TT}}}SimpleItemDescription")
    d.set("Name", "Token")
    d.set("Type", "tt:ReferenceToken")
    data = _sub(md, f"{{{TT}}}Data")
    # tt:ItemListDescription is a sequence: every SimpleItemDescription first (RQ-5 correction).
    items = (("Name", "xs:string", "Simple"), ("Scope", "xs:string", "Simple"),
             ("Offline", "xs:boolean", "Simple"), ("Location", "tt:GeoLocation", "Element"))
    for name, typ, kind in items:
        d = _sub(data, f"{{{TT}}}{kind}ItemDescription")
        d.set("Name", name)
        d.set("Type", typ)


def __getattr__(name: str) -> object:
    """Old names of renamed classes still resolve, with a DeprecationWarning."""
    from .._moved import renamed

    return renamed(__name__, name)
