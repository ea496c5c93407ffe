"""Pull-point subscriptions as a sans-I/O state machine (events.md sections 4-10).

:class:`PullPointManager` owns every pull point of one event service and the
:class:`~uplink62676.query.resources.ResourceRegistry` they report on.  Time
comes in as ``now`` (seconds since the epoch, UTC wall clock, because
termination times and ``UtcTime`` are absolute).  PullMessages is a long
poll: :meth:`PullPointManager.pull` returns a :class:`PullResult` at once when
messages are waiting (EVT-23) and otherwise a :class:`PendingPull`.  A pending
poll completes when a resource change produces a message for it (EVT-24) or
when its timeout passes (EVT-25, the heartbeat of RQ-21); every method that
can complete polls returns the :class:`PullCompleted` events, and the adapter
sleeps until :meth:`PullPointManager.next_deadline` and then calls
:meth:`PullPointManager.handle_timeout`.

Per pull point (EVT-R8): the compiled filter, the termination time, a
bounded queue whose overflow coalesces property transitions per
topic+token instead of dropping them, lazily expanded snapshots for the
initial report and synchronization points (EVT-46, EVT-37), and at most one
blocked request (EVT-28).  A bounded history of resource changes backs Seek
(EVT-34..EVT-36).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from typing import Any, Final

import attrs

from ..errors import LocalProtocolError, NotificationFault
from ..namespaces import TNS1
from .faults import base_fault, pull_messages_fault, unacceptable_termination_fault
from .filters import ResourceFilter
from .resources import (
    Notification,
    PropertyOperation,
    Resource,
    ResourceChange,
    ResourceRegistry,
    initialized,
    translate,
)
from .xstime import parse_datetime, parse_duration

__all__ = [
    "PendingPull",
    "PullCompleted",
    "PullPointManager",
    "PullPointSettings",
    "PullResult",
    "Subscription",
]

_BEGIN_TOPIC: Final = "EventBuffer/Begin"
_BEGIN_STEPS: Final = ("EventBuffer", "Begin")


def _positive(_i: object, attr: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise LocalProtocolError(f"{attr.name} must be > 0, got {value!r}")


def _non_negative(_i: object, attr: attrs.Attribute[Any], value: int) -> None:
    if value < 0:
        raise LocalProtocolError(f"{attr.name} must be >= 0, got {value!r}")


@attrs.frozen(slots=True)
class PullPointSettings:
    """Limits and defaults of a pull-point server.

    ``max_timeout`` must be at least 60 s (EVT-21).  ``history`` is the number
    of resource changes kept for Seek; 0 turns persistent storage off.
    """

    max_pull_points: int = attrs.field(default=64, validator=_positive)
    max_pull_points_per_client: int = attrs.field(default=16, validator=_positive)
    max_queue: int = attrs.field(default=10_000, validator=_positive)
    default_termination: float = attrs.field(default=60.0, validator=_positive)
    max_termination: float = attrs.field(default=3600.0, validator=_positive)
    max_timeout: float = attrs.field(default=120.0)
    max_message_limit: int = attrs.field(default=1000, validator=_positive)
    history: int = attrs.field(default=10_000, validator=_non_negative)

    @max_timeout.validator
    def _check_timeout(self, _attr: object, value: float) -> None:
        if value < 60.0:
            raise LocalProtocolError(f"max_timeout must be >= 60 s (EVT-21), got {value!r}")


@attrs.frozen(slots=True)
class Subscription:
    """What the creator of a pull point learns: its id and termination time."""

    id: str
    termination_time: float
    current_time: float


@attrs.frozen(slots=True)
class PullResult:
    """A PullMessages answer: messages (empty only on timeout, EVT-30) and times."""

    messages: tuple[Notification, ...]
    current_time: float
    termination_time: float


@attrs.define(slots=True, eq=False)
class PendingPull:
    """A blocked PullMessages request; completes at ``deadline`` at the latest."""

    pull_point: str
    deadline: float
    timeout: float
    message_limit: int
    done: bool = False


@attrs.frozen(slots=True)
class PullCompleted:
    """A pending poll finished: with messages, empty (timeout), or with a fault."""

    pending: PendingPull
    result: PullResult | NotificationFault


@attrs.define(slots=True, eq=False)
class _Snapshot:
    """A lazily expanded Initialized report of many resources."""

    tokens: deque[str]
    members: set[str]
    initial: bool


@attrs.define(slots=True, eq=False)
class _PullPoint:
    id: str
    client: str | None
    filter: ResourceFilter
    changed_only: bool
    termination_time: float
    queue: deque[Notification | _Snapshot] = attrs.field(factory=deque)
    queued: int = 0
    pending: PendingPull | None = None
    snapshots: list[_Snapshot] = attrs.field(factory=list)
    compact_at: int = 0


def _merge(prev: Notification, new: Notification) -> Notification | None:
    """Coalesce two queued transitions of one property (EVT-R8)."""
    op_p, op_n = prev.operation, new.operation
    if op_n is PropertyOperation.DELETED:
        return None if op_p is PropertyOperation.INITIALIZED else new
    if op_p in (PropertyOperation.INITIALIZED, PropertyOperation.DELETED):
        return attrs.evolve(new, operation=PropertyOperation.INITIALIZED)
    return new


class PullPointManager:
    """All pull points of one event service, plus the resources they report."""

    def __init__(self, registry: ResourceRegistry | None = None,
                 config: PullPointSettings | None = None, *, id_seed: bytes = b"") -> None:
        self.registry = registry if registry is not None else ResourceRegistry()
        self.config = config if config is not None else PullPointSettings()
        self._points: dict[str, _PullPoint] = {}
        self._seed = id_seed
        self._counter = 0
        self._history: deque[ResourceChange] = deque(maxlen=self.config.history or None)
        self._buffer_start: float | None = None

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._points)

    def __contains__(self, pull_point: object) -> bool:
        return pull_point in self._points

    @property
    def persistent_storage(self) -> bool:
        """Whether Seek is offered (``PersistentNotificationStorage``)."""
        return self.config.history > 0

    def termination_time(self, pull_point: str) -> float:
        """Current termination time of a live pull point."""
        return self._get_raw(pull_point).termination_time

    def subscriptions(self, now: float) -> Iterator[Subscription]:
        """The pull points alive at ``now``."""
        for p in self._points.values():
            if p.pending is not None or p.termination_time >= now:
                yield Subscription(p.id, p.termination_time, now)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must next be called (``None``: nothing scheduled)."""
        best: float | None = None
        for p in self._points.values():
            t = p.pending.deadline if p.pending is not None else p.termination_time
            if best is None or t < best:
                best = t
        return best

    # ------------------------------------------------------------------ lifecycle

    def _new_id(self) -> str:
        while True:
            self._counter += 1
            digest = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).hexdigest()
            pid = digest[:20] if self._seed else str(self._counter)
            if pid not in self._points:
                return pid

    def _termination(self, value: str | float | None, now: float, fault: str) -> float:
        cfg = self.config
        if value is None:
            return now + cfg.default_termination
        if isinstance(value, str):
            try:
                d = parse_duration(value)
                when = now + d.length_from(now) if not d.negative else -1.0
            except LocalProtocolError:
                try:
                    when = parse_datetime(value)
                except LocalProtocolError:
                    when = -1.0
        else:
            when = float(value)
        if not now <= when <= now + cfg.max_termination:
            raise unacceptable_termination_fault(
                fault, f"termination time {value!r} not acceptable", now,
                now + min(10.0, cfg.max_termination), now + cfg.max_termination)
        return when

    def create(
        self,
        flt: ResourceFilter | None,
        now: float,
        *,
        initial_termination: str | float | None = None,
        client: str | None = None,
        changed_only: bool = False,
    ) -> Subscription:
        """CreatePullPointSubscription (EVT-11..EVT-19, EVT-61).

        ``initial_termination`` is the raw ``xs:duration``/``xs:dateTime`` text
        (or an absolute epoch time, or ``None`` for the default of EVT-R3).
        ``client`` keys the per-client limit.  Raises
        ``wsnt:SubscribeCreationFailedFault`` beyond the limits and
        ``wsnt:UnacceptableInitialTerminationTimeFault`` for a bad time.
        """
        self._expire(now)
        cfg = self.config
        if len(self._points) >= cfg.max_pull_points:
            raise base_fault("wsnt:SubscribeCreationFailedFault",
                             f"all {cfg.max_pull_points} pull points in use", now)
        if client is not None and sum(
                1 for p in self._points.values() if p.client == client
        ) >= cfg.max_pull_points_per_client:
            raise base_fault("wsnt:SubscribeCreationFailedFault",
                             f"client has {cfg.max_pull_points_per_client} pull points", now)
        tt = self._termination(initial_termination, now,
                               "wsnt:UnacceptableInitialTerminationTimeFault")
        flt = flt if flt is not None else ResourceFilter()
        pp = _PullPoint(self._new_id(), client, flt, changed_only, tt)
        if not changed_only:
            self._push_snapshot(pp, initial=True)
        self._points[pp.id] = pp
        return Subscription(pp.id, tt, now)

    def _expire(self, now: float) -> None:
        """Drop pull points past their termination time (no poll is blocked on them)."""
        for pid in [p.id for p in self._points.values()
                    if p.pending is None and p.termination_time < now]:
            del self._points[pid]

    def _push_snapshot(self, pp: _PullPoint, *, initial: bool) -> None:
        tokens = [r.token for r in pp.filter.select_all(self.registry)]
        if tokens:
            snap = _Snapshot(deque(tokens), set(tokens), initial)
            pp.queue.append(snap)
            pp.snapshots.append(snap)

    def _get_raw(self, pull_point: str) -> _PullPoint:
        pp = self._points.get(pull_point)
        if pp is None:
            raise LocalProtocolError(f"no pull point {pull_point!r}")
        return pp

    def _get(self, pull_point: str, now: float) -> _PullPoint:
        pp = self._points.get(pull_point)
        if pp is not None and pp.pending is None and pp.termination_time < now:
            del self._points[pull_point]
            pp = None
        if pp is None:
            raise base_fault("wsrf-r:ResourceUnknownFault",
                             "unknown or expired pull point", now)
        return pp

    def renew(self, pull_point: str, now: float,
              termination: str | float | None = None) -> Subscription:
        """Renew (EVT-31, EVT-62, EVT-R6): returns the new termination time."""
        pp = self._get(pull_point, now)
        tt = self._termination(termination, now, "wsnt:UnacceptableTerminationTimeFault")
        if pp.pending is not None:
            tt = max(tt, pp.pending.deadline)
        pp.termination_time = tt
        return Subscription(pp.id, tt, now)

    def unsubscribe(self, pull_point: str, now: float) -> list[PullCompleted]:
        """Unsubscribe (EVT-32): the pull point ends at once; a blocked poll gets
        ``wsrf-r:ResourceUnknownFault``."""
        pp = self._get(pull_point, now)
        del self._points[pull_point]
        if pp.pending is None:
            return []
        pending, pp.pending = pp.pending, None
        pending.done = True
        return [PullCompleted(pending, base_fault(
            "wsrf-r:ResourceUnknownFault", "pull point was unsubscribed", now))]

    def set_synchronization_point(self, pull_point: str, now: float) -> list[PullCompleted]:
        """SetSynchronizationPoint (EVT-37, EVT-R7): re-report every matching resource."""
        pp = self._get(pull_point, now)
        if not pp.changed_only:
            self._push_snapshot(pp, initial=False)
        return self._wake(pp, now)

    def seek(self, pull_point: str, now: float, utc_time: float,
             reverse: bool = False) -> list[PullCompleted]:
        """Seek (EVT-34..EVT-36): replace the queue with stored messages from ``utc_time``."""
        pp = self._get(pull_point, now)
        if not self.persistent_storage:
            raise LocalProtocolError("Seek needs persistent notification storage")
        pp.queue.clear()
        pp.snapshots.clear()
        pp.queued = 0
        changes = (c for c in reversed(self._history) if c.utc_time <= utc_time) if reverse \
            else (c for c in self._history if c.utc_time >= utc_time)
        begin_ok = pp.filter.accepts_event(TNS1, _BEGIN_STEPS)
        start = self._buffer_start
        if not reverse and begin_ok and (start is None or utc_time < start):
            self._enqueue(pp, Notification(_BEGIN_TOPIC, start if start is not None else now))
        for change in changes:
            note = translate(change, pp.filter, pp.changed_only)
            if note is not None:
                self._enqueue(pp, note)
        if reverse and begin_ok:
            self._enqueue(pp, Notification(_BEGIN_TOPIC, start if start is not None else now))
        return self._wake(pp, now)

    # ------------------------------------------------------------------ pulling

    def pull(self, pull_point: str, now: float, *, timeout: float,
             message_limit: int) -> PullResult | PendingPull:
        """PullMessages (EVT-20..EVT-30, EVT-R5).

        ``timeout`` in seconds (validated by the caller as a non-negative
        ``xs:duration``).  Raises ``tev:PullMessagesFaultResponse`` above the
        maximum (EVT-29) and ``wsnt:UnableToGetMessagesFault`` while another
        poll of this pull point is blocked (EVT-28).
        """
        cfg = self.config
        if timeout > cfg.max_timeout:
            raise pull_messages_fault(cfg.max_timeout, cfg.max_message_limit)
        pp = self._get(pull_point, now)
        if pp.pending is not None:
            raise base_fault("wsnt:UnableToGetMessagesFault",
                             "another PullMessages request is pending", now)
        limit = min(max(message_limit, 1), cfg.max_message_limit)
        pp.termination_time = max(pp.termination_time, now + timeout)
        messages = self._take(pp, limit, now)
        if messages or timeout <= 0:
            return PullResult(tuple(messages), now, pp.termination_time)
        pending = PendingPull(pp.id, now + timeout, timeout, limit)
        pp.pending = pending
        return pending

    def cancel(self, pending: PendingPull) -> None:
        """Forget a blocked poll whose request went away (e.g. stream reset)."""
        pp = self._points.get(pending.pull_point)
        if pp is not None and pp.pending is pending:
            pp.pending = None
        pending.done = True

    def _take(self, pp: _PullPoint, limit: int, now: float) -> list[Notification]:
        out: list[Notification] = []
        queue, registry, flt = pp.queue, self.registry, pp.filter
        while queue and len(out) < limit:
            head = queue[0]
            if isinstance(head, Notification):
                queue.popleft()
                pp.queued -= 1
                out.append(head)
                continue
            tokens, members = head.tokens, head.members
            while tokens and len(out) < limit:
                token = tokens.popleft()
                if token not in members:
                    continue
                members.discard(token)
                res = registry.get(token)
                if res is not None and flt.matches(res):
                    out.append(initialized(res, flt, now))
            if not tokens:
                queue.popleft()
                pp.snapshots.remove(head)
        return out

    def _complete(self, pp: _PullPoint, now: float) -> PullCompleted | None:
        pending = pp.pending
        if pending is None:
            return None
        messages = self._take(pp, pending.message_limit, now)
        if not messages and now < pending.deadline:
            return None
        pp.pending = None
        pending.done = True
        pp.termination_time = max(pp.termination_time, now + pending.timeout)
        return PullCompleted(pending, PullResult(tuple(messages), now, pp.termination_time))

    def _wake(self, pp: _PullPoint, now: float) -> list[PullCompleted]:
        done = self._complete(pp, now)
        return [done] if done is not None else []

    def handle_timeout(self, now: float) -> list[PullCompleted]:
        """Complete polls whose timeout passed (empty answers: the RQ-21 heartbeat)
        and drop pull points whose termination time passed (EVT-38)."""
        out: list[PullCompleted] = []
        for pid, pp in list(self._points.items()):
            if pp.pending is not None:
                if pp.pending.deadline <= now:
                    done = self._complete(pp, now)
                    if done is not None:
                        out.append(done)
            elif pp.termination_time < now:
                del self._points[pid]
        return out

    # ------------------------------------------------------------------ resources

    def apply(self, change: ResourceChange | None) -> list[PullCompleted]:
        """Fan a registry change out to every pull point (RQ-9..RQ-11, RQ-R3)."""
        if change is None:
            return []
        if self.config.history:
            if self._buffer_start is None:
                self._buffer_start = change.utc_time
            if len(self._history) == self._history.maxlen:
                self._buffer_start = self._history[1].utc_time if len(self._history) > 1 \
                    else change.utc_time
            self._history.append(change)
        out: list[PullCompleted] = []
        token = change.token
        for pp in self._points.values():
            note = self._filter_change(pp, change, token)
            if note is not None:
                self._enqueue(pp, note)
                if pp.pending is not None:
                    done = self._complete(pp, change.utc_time)
                    if done is not None:
                        out.append(done)
        return out

    def _filter_change(self, pp: _PullPoint, change: ResourceChange,
                       token: str) -> Notification | None:
        snaps = [s for s in pp.snapshots if token in s.members]
        if snaps:
            new = change.new
            if new is not None and pp.filter.matches(new):
                return None  # the snapshot will report the current state
            for s in snaps:
                s.members.discard(token)
            if snaps[0].initial:
                return None  # the client never saw it
        return translate(change, pp.filter, pp.changed_only)

    def _enqueue(self, pp: _PullPoint, note: Notification) -> None:
        pp.queue.append(note)
        pp.queued += 1
        if pp.queued > max(self.config.max_queue, pp.compact_at):
            self._compact(pp)
            # Still over the limit (all distinct properties): compact again only
            # after the queue doubled, so overflow costs amortised O(1) per message.
            pp.compact_at = 2 * pp.queued if pp.queued > self.config.max_queue else 0

    def _compact(self, pp: _PullPoint) -> None:
        """Overflow policy of EVT-R8: drop non-property events, coalesce the rest."""
        limit = self.config.max_queue
        entries = list(pp.queue)
        count = pp.queued
        if count > limit:
            kept: list[Notification | _Snapshot] = []
            for e in entries:
                if isinstance(e, Notification) and e.operation is None and count > limit:
                    count -= 1
                    continue
                kept.append(e)
            entries = kept
        out: list[Notification | _Snapshot | None] = []
        where: dict[tuple[str, str | None], int] = {}
        for e in entries:
            if isinstance(e, _Snapshot) or e.operation is None:
                if isinstance(e, _Snapshot):
                    where.clear()
                out.append(e)
                continue
            i = where.get(e.key)
            if i is None:
                where[e.key] = len(out)
                out.append(e)
                continue
            prev = out[i]
            assert isinstance(prev, Notification)
            merged = _merge(prev, e)
            out[i] = merged
            if merged is None:
                del where[e.key]
        pp.queue = deque(e for e in out if e is not None)
        pp.queued = sum(1 for e in pp.queue if isinstance(e, Notification))

    def put_resource(self, resource: Resource, now: float) -> list[PullCompleted]:
        """Add or replace a resource and notify the pull points."""
        return self.apply(self.registry.put(resource, now))

    def update_resource(self, token: str, now: float, **changes: object) -> list[PullCompleted]:
        """Change fields of a resource and notify the pull points."""
        return self.apply(self.registry.update(token, now, **changes))

    def set_offline(self, token: str, offline: bool, now: float) -> list[PullCompleted]:
        """Online/offline transition (RQ-11) and notification."""
        return self.apply(self.registry.set_offline(token, offline, now))

    def remove_resource(self, token: str, now: float) -> list[PullCompleted]:
        """Remove a resource (RQ-10) and notify the pull points."""
        return self.apply(self.registry.remove(token, now))


def __getattr__(name: str) -> object:
    """Old names of renamed classes still resolve, with a DeprecationWarning."""
    from .._moved import renamed

    return renamed(__name__, name)
