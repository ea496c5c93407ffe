"""Client side of resource queries, sans-I/O (resource-query.md sections 4-10).

* :class:`Query` holds a query as Python values (``near=(lat, lon)``,
  ``radius``, ``prefix``, ``scopes``, ``select``, ``topics``, ``content``) and
  renders the ``tev:Filter`` of RQ-R5 (``tt`` namespace, qualified children).
* ``*_request`` functions build request envelopes; ``parse_*`` functions read
  responses (faults come back as :class:`~uplink62676.errors.SoapFault`).
* :class:`ResourceMirror` applies ``Initialized``/``Changed``/``Deleted`` to a
  local copy of the remote resources (RQ-2, EVT-46, OQ-30).
* :class:`QueryClient` drives one query: subscribe, pull in a loop, declare
  the server dead when an answer is more than ``Timeout`` + 10 s late or the
  pull point is unknown, then subscribe again and *replace* the mirror
  (RQ-21, RQ-R13).  It produces request bodies and consumes response bodies;
  the adapter does the HTTP.
"""

from __future__ import annotations

import enum
import functools
import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar, cast

import attrs
from lxml import etree

from ..errors import LocalProtocolError, NotificationFault, RemoteProtocolError, SoapFault
from ..namespaces import TEV, TNS1, TT, WSA, WSNT, WSRF_R
from ..soap import SoapRequest, build_request, parse_response
from .filters import CONCRETE, CONCRETE_SET, ITEM_FILTER, MATCH_RFC3986
from .messages import parse_notification
from .resources import Notification, PropertyOperation, Resource
from .xstime import format_duration, parse_datetime

__all__ = [
    "ClientState",
    "MirrorChange",
    "PullBatch",
    "Query",
    "QueryClient",
    "ResourceMirror",
    "SubscriptionRef",
    "create_subscription_request",
    "parse_pull_response",
    "parse_subscription_response",
    "pull_messages_request",
    "renew_request",
    "set_synchronization_point_request",
    "unsubscribe_request",
]

_EP = "http://www.onvif.org/ver10/events/wsdl/EventPortType/"
_PP = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/"
_SM = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/"
#: Grace added to ``Timeout`` before a missing answer counts as dead (RQ-R13).
LIVENESS_GRACE: Final = 10.0


_F = TypeVar("_F", bound=Callable[..., Any])


def _guard(func: _F) -> _F:
    """Turn lxml's refusal of a value (ValueError/TypeError) into LocalProtocolError."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            shown = repr((args, kwargs))[:300]
            raise LocalProtocolError(
                f"{func.__name__}: a value is not representable in XML ({exc}): {shown}"
            ) from None

    return cast(_F, wrapper)


def _num(x: float) -> str:
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


@attrs.frozen(slots=True)
class Query:
    """A resource query as Python values; every given part narrows the result (RQ-R6).

    ``topics`` are resource kinds (``"MediaProfile"``) or full ConcreteSet
    paths (``"tns1:Resource//."``); ``scopes`` are URIs or ``(uri, match_rule)``
    pairs; ``select`` are select paths (``"/Name"``).
    """

    near: tuple[float, float] | None = None
    radius: float | None = None
    include_unknown: bool = False
    height: float | None = None
    prefix: str | None = None
    scopes: tuple[str | tuple[str, str], ...] = attrs.field(default=(), converter=tuple)
    select: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    topics: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    content: str | None = None
    changed_only: bool = False

    def __attrs_post_init__(self) -> None:
        if (self.near is None) != (self.radius is None):
            raise LocalProtocolError("near and radius go together")

    @_guard
    def filter_element(self) -> etree._Element | None:
        """The ``tev:Filter`` element, or ``None`` when the query selects everything."""
        flt = etree.Element(f"{{{TEV}}}Filter",
                            nsmap={"tev": TEV, "wsnt": WSNT, "tt": TT, "tns1": TNS1})
        if self.topics:
            paths = [t if ":" in t else f"tns1:Resource/{t}" for t in self.topics]
            dialect = CONCRETE if len(paths) == 1 and "//" not in paths[0] else CONCRETE_SET
            te = etree.SubElement(flt, f"{{{WSNT}}}TopicExpression", Dialect=dialect)
            te.text = "|".join(paths)
        if self.content is not None:
            mc = etree.SubElement(flt, f"{{{WSNT}}}MessageContent", Dialect=ITEM_FILTER)
            mc.text = self.content
        if self.near is not None and self.radius is not None:
            loc = etree.SubElement(flt, f"{{{TT}}}LocationFilter")
            lat, lon = self.near
            etree.SubElement(loc, f"{{{TT}}}lon").text = _num(lon)
            etree.SubElement(loc, f"{{{TT}}}lat").text = _num(lat)
            if self.height is not None:
                etree.SubElement(loc, f"{{{TT}}}height").text = _num(self.height)
            etree.SubElement(loc, f"{{{TT}}}radius").text = _num(self.radius)
            etree.SubElement(loc, f"{{{TT}}}includeUnknown").text = (
                "true" if self.include_unknown else "false")
        if self.prefix is not None:
            pf = etree.SubElement(flt, f"{{{TT}}}PrefixFilter")
            etree.SubElement(pf, f"{{{TT}}}Prefix").text = self.prefix
        if self.scopes:
            sf = etree.SubElement(flt, f"{{{TT}}}ScopeFilter")
            for scope in self.scopes:
                uri, rule = (scope, MATCH_RFC3986) if isinstance(scope, str) else scope
                el = etree.SubElement(sf, f"{{{TT}}}Scope")
                el.text = uri
                if rule != MATCH_RFC3986:
                    el.set("Match", rule)
        if self.select:
            sel = etree.SubElement(flt, f"{{{TT}}}SelectFilter")
            for path in self.select:
                etree.SubElement(sel, f"{{{TT}}}Path").text = path
        return flt if len(flt) else None


def _headers(action: str, message_id: str | None, to: str | None) -> list[etree._Element]:
    out = [etree.Element(f"{{{WSA}}}Action", nsmap={"wsa": WSA})]
    out[0].text = action
    if message_id:
        e = etree.Element(f"{{{WSA}}}MessageID", nsmap={"wsa": WSA})
        e.text = message_id
        out.append(e)
    if to:
        e = etree.Element(f"{{{WSA}}}To", nsmap={"wsa": WSA})
        e.text = to
        out.append(e)
    return out


@_guard
def create_subscription_request(query: Query, *, termination: float | str = 60.0,
                                message_id: str | None = None) -> SoapRequest:
    """``CreatePullPointSubscription`` for ``query`` (section 4 example)."""
    body = etree.Element(f"{{{TEV}}}CreatePullPointSubscription", nsmap={"tev": TEV})
    flt = query.filter_element()
    if flt is not None:
        body.append(flt)
    itt = etree.SubElement(body, f"{{{TEV}}}InitialTerminationTime")
    itt.text = termination if isinstance(termination, str) else format_duration(termination)
    if query.changed_only:
        pol = etree.SubElement(body, f"{{{TEV}}}SubscriptionPolicy")
        etree.SubElement(pol, f"{{{TEV}}}ChangedOnly").text = "true"
    action = _EP + "CreatePullPointSubscriptionRequest"
    return build_request(body, action, _headers(action, message_id, None))


@_guard
def pull_messages_request(address: str, *, timeout: float = 10.0, limit: int = 100,
                          message_id: str | None = None) -> SoapRequest:
    """``PullMessages`` to the pull point at ``address`` (EVT-R1: ``wsa:To``)."""
    body = etree.Element(f"{{{TEV}}}PullMessages", nsmap={"tev": TEV})
    etree.SubElement(body, f"{{{TEV}}}Timeout").text = format_duration(timeout)
    etree.SubElement(body, f"{{{TEV}}}MessageLimit").text = str(limit)
    action = _PP + "PullMessagesRequest"
    return build_request(body, action, _headers(action, message_id, address))


@_guard
def renew_request(address: str, termination: float | str = 60.0, *,
                  message_id: str | None = None) -> SoapRequest:
    """``wsnt:Renew`` (EVT-R6: servers accept it; prefer PullMessages to keep alive)."""
    body = etree.Element(f"{{{WSNT}}}Renew", nsmap={"wsnt": WSNT})
    etree.SubElement(body, f"{{{WSNT}}}TerminationTime").text = (
        termination if isinstance(termination, str) else format_duration(termination))
    action = _SM + "RenewRequest"
    return build_request(body, action, _headers(action, message_id, address))


@_guard
def unsubscribe_request(address: str, *, message_id: str | None = None) -> SoapRequest:
    """``wsnt:Unsubscribe`` (EVT-33)."""
    body = etree.Element(f"{{{WSNT}}}Unsubscribe", nsmap={"wsnt": WSNT})
    action = _SM + "UnsubscribeRequest"
    return build_request(body, action, _headers(action, message_id, address))


@_guard
def set_synchronization_point_request(address: str, *,
                                      message_id: str | None = None) -> SoapRequest:
    """``SetSynchronizationPoint`` (EVT-49)."""
    body = etree.Element(f"{{{TEV}}}SetSynchronizationPoint", nsmap={"tev": TEV})
    action = _PP + "SetSynchronizationPointRequest"
    return build_request(body, action, _headers(action, message_id, address))


@attrs.frozen(slots=True)
class SubscriptionRef:
    """A created pull point: its address and times."""

    address: str
    current_time: float
    termination_time: float


@attrs.frozen(slots=True)
class PullBatch:
    """A parsed PullMessagesResponse."""

    current_time: float
    termination_time: float
    notifications: tuple[Notification, ...]


def _time(elem: etree._Element | None, what: str) -> float:
    if elem is None:
        raise RemoteProtocolError(f"response without {what}")
    try:
        return parse_datetime("".join(str(t) for t in elem.itertext()))
    except LocalProtocolError:
        raise RemoteProtocolError(f"bad {what}: {elem.text!r}") from None


def parse_subscription_response(data: bytes, status: int = 200) -> SubscriptionRef:
    """Read a CreatePullPointSubscriptionResponse; raises the server's SoapFault."""
    body = parse_response(data, status=status).body
    if body.tag != f"{{{TEV}}}CreatePullPointSubscriptionResponse":
        raise RemoteProtocolError(f"unexpected response {body.tag}")
    addr = body.find(f"{{{TEV}}}SubscriptionReference/{{{WSA}}}Address")
    if addr is None or not (addr.text or "").strip():
        raise RemoteProtocolError("no SubscriptionReference address")
    return SubscriptionRef((addr.text or "").strip(), _time(body.find(f"{{{WSNT}}}CurrentTime"),
                           "CurrentTime"),
                           _time(body.find(f"{{{WSNT}}}TerminationTime"), "TerminationTime"))


def parse_pull_response(data: bytes, status: int = 200) -> PullBatch:
    """Read a PullMessagesResponse (note the ``tev:`` times, events.md section 5)."""
    body = parse_response(data, status=status).body
    if body.tag != f"{{{TEV}}}PullMessagesResponse":
        raise RemoteProtocolError(f"unexpected response {body.tag}")
    notes = tuple(parse_notification(nm)
                  for nm in body.iterfind(f"{{{WSNT}}}NotificationMessage"))
    return PullBatch(_time(body.find(f"{{{TEV}}}CurrentTime"), "CurrentTime"),
                     _time(body.find(f"{{{TEV}}}TerminationTime"), "TerminationTime"), notes)


def is_resource_unknown(fault: SoapFault) -> bool:
    """True if ``fault`` is ``wsrf-r:ResourceUnknownFault`` (the pull point is gone)."""
    if isinstance(fault, NotificationFault):
        return fault.fault == "wsrf-r:ResourceUnknownFault"
    detail = fault.detail or b""
    return b"ResourceUnknownFault" in detail and WSRF_R.encode() in detail


@attrs.frozen(slots=True)
class MirrorChange:
    """What one notification did to the mirror: ``old`` -> ``new`` (either may be ``None``)."""

    token: str
    old: Resource | None
    new: Resource | None


class ResourceMirror:
    """A local copy of the remote resources, kept by property notifications."""

    __slots__ = ("resources",)

    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}

    def __len__(self) -> int:
        return len(self.resources)

    def __contains__(self, token: object) -> bool:
        return token in self.resources

    def get(self, token: str) -> Resource | None:
        """The mirrored resource with this token, or ``None``."""
        return self.resources.get(token)

    def clear(self) -> None:
        """Forget everything (a new subscription replaces the mirror, RQ-R13)."""
        self.resources.clear()

    def apply(self, notes: Iterable[Notification]) -> list[MirrorChange]:
        """Apply notifications in order: Initialized/Changed replace, Deleted removes."""
        out = []
        for n in notes:
            if n.token is None or not n.topic.startswith("Resource/"):
                continue
            old = self.resources.get(n.token)
            if n.operation is PropertyOperation.DELETED:
                if old is not None:
                    del self.resources[n.token]
                    out.append(MirrorChange(n.token, old, None))
            elif n.data is not None and n.data != old:
                self.resources[n.token] = n.data
                out.append(MirrorChange(n.token, old, n.data))
        return out


class ClientState(enum.Enum):
    """Where a :class:`QueryClient` is."""

    IDLE = "idle"
    SUBSCRIBING = "subscribing"
    PULLING = "pulling"
    WAITING = "waiting"


@attrs.frozen(slots=True)
class OutgoingRequest:
    """A request the adapter must POST to ``url``."""

    url: str
    request: SoapRequest


class QueryClient:
    """Runs one resource query and keeps :attr:`mirror` current (RQ-21, RQ-R13).

    Loop: :meth:`next_request` -> adapter POSTs it -> :meth:`receive` with
    the HTTP status and body; sleep until :meth:`next_deadline` and call
    :meth:`handle_timeout` when nothing arrives.  ``reconnects`` counts
    re-subscriptions.
    """

    def __init__(self, service_url: str, query: Query, *, timeout: float = 10.0,
                 message_limit: int = 100, termination: float = 60.0,
                 id_seed: bytes = b"") -> None:
        if not 0 <= timeout < termination:
            raise LocalProtocolError(
                f"need 0 <= timeout < termination (RQ-R13), got timeout={timeout!r}, "
                f"termination={termination!r}")
        if message_limit < 1:
            raise LocalProtocolError(f"message_limit must be >= 1, got {message_limit!r}")
        self.service_url = service_url
        self.query = query
        self.timeout = timeout
        self.message_limit = message_limit
        self.termination = termination
        self.mirror = ResourceMirror()
        self.state = ClientState.IDLE
        self.address: str | None = None
        self.reconnects = 0
        self.last_batch: PullBatch | None = None
        self._sent_at: float | None = None
        self._seed = id_seed
        self._count = 0

    def _message_id(self) -> str:
        self._count += 1
        h = hashlib.sha256(self._seed + self._count.to_bytes(8, "big")).hexdigest()
        return f"urn:uuid:{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"

    def next_request(self, now: float) -> OutgoingRequest | None:
        """The next request to send, or ``None`` while one is in flight."""
        if self.state in (ClientState.SUBSCRIBING, ClientState.WAITING):
            return None
        self._sent_at = now
        if self.state is ClientState.IDLE or self.address is None:
            self.state = ClientState.SUBSCRIBING
            return OutgoingRequest(self.service_url, create_subscription_request(
                self.query, termination=self.termination, message_id=self._message_id()))
        self.state = ClientState.WAITING
        return OutgoingRequest(self.address, pull_messages_request(
            self.address, timeout=self.timeout, limit=self.message_limit,
            message_id=self._message_id()))

    def receive(self, status: int, body: bytes, now: float) -> list[MirrorChange]:
        """Consume the answer to the last request; returns the mirror changes."""
        state, self._sent_at = self.state, None
        try:
            if state is ClientState.SUBSCRIBING:
                ref = parse_subscription_response(body, status)
                self.address = ref.address
                self.mirror.clear()  # a new subscription replaces the mirror (RQ-R13)
                self.state = ClientState.PULLING
                return []
            if state is ClientState.WAITING:
                batch = parse_pull_response(body, status)
                self.last_batch = batch
                self.state = ClientState.PULLING
                return self.mirror.apply(batch.notifications)
        except SoapFault as fault:
            if state is ClientState.WAITING and not is_resource_unknown(fault):
                self.state = ClientState.PULLING
                raise
            self._lost()
            if state is ClientState.SUBSCRIBING:
                raise
            return []
        raise LocalProtocolError(f"no request in flight (state {state.value})")

    def _lost(self) -> None:
        self.address = None
        self.state = ClientState.IDLE
        self.reconnects += 1

    def next_deadline(self) -> float | None:
        """When an answer in flight counts as lost (``Timeout`` + 10 s, RQ-R13)."""
        if self._sent_at is None:
            return None
        return self._sent_at + self.timeout + LIVENESS_GRACE

    def handle_timeout(self, now: float) -> bool:
        """Declare the server dead if the answer is overdue; True if it was."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return False
        self._sent_at = None
        self._lost()
        return True

    def connection_lost(self) -> None:
        """The transport failed: re-subscribe on the next request."""
        self._sent_at = None
        self._lost()


def notifications_of(batches: Sequence[PullBatch]) -> list[Notification]:
    """All notifications of several batches, in order."""
    return [n for b in batches for n in b.notifications]
