"""asyncio host for the event service with resource queries behind a :class:`DeviceAgent`.

:class:`VssHost` is a device handler (like :class:`~uplink62676.aio.config.ConfiguredDevice`)
that serves a sans-I/O :class:`~uplink62676.services.events.EventService` -- usually the
one inside a :class:`~uplink62676.app.simulate.SimulatedVss` -- through the uplink:

* a blocked ``PullMessages`` (a :class:`PendingResponse`) becomes an awaitable the
  handler waits on; the answer arrives from a resource change, from
  ``take_completed()`` (collected after *every* request) or from the timer;
* one loop timer sleeps until the service's ``next_deadline()`` (wall clock)
  and then calls ``handle_timeout(now)`` -- poll timeouts (the RQ-21
  heartbeat) and the simulation's camera changes;
* when the cloud resets the stream the handler task is cancelled and the poll
  is withdrawn with ``cancel()``;
* ``/onvif/device_service``, ``/onvif/media_service`` and ``/onvif/media2_service``
  go to the simulation's ``device`` (:class:`DeviceService`) and ``media``
  (:class:`MediaService`) with the request's ``:scheme`` and ``:authority``,
  from which every XAddr and URI is built (UPL-59, UPL-R21, DEV-R14); without
  a ``device``, GetServices alone is answered.  Only when asked to: a device
  behind ``--forward`` has its own device and media services.

Requests carry the uplink's UserLevel into the service's access check (UPL-41).
No protocol logic lives here: it moves requests, answers and time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final, Protocol

from ..services.device import (
    DEVICE_SERVICE_PATH,
    MEDIA2_SERVICE_PATH,
    MEDIA_SERVICE_PATH,
    DeviceService,
    handle_device_service,
)
from ..services.events import EventService, PendingResponse
from ..services.media import MediaService
from ..soap import SoapResponse
from ._common import Response
from .device import Handler, TunneledRequest

__all__ = ["DEVICE_SERVICE_PATH", "Completions", "EventSource", "VssHost"]

log = logging.getLogger("uplink62676.vss")

Completions = list[tuple[PendingResponse, SoapResponse]]

_BODY_LIMIT: Final = 1024 * 1024


class EventSource(Protocol):
    """What :class:`VssHost` drives: an :class:`EventService`, or a simulation around one
    (such as :class:`uplink62676.app.simulate.SimulatedVss`) that has it as ``service``."""

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must run next; ``None`` when nothing waits."""
    def handle_timeout(self, now: float) -> Completions:
        """Answer the polls that are due at ``now``."""
    def take_completed(self) -> Completions:
        """Polls answered as a side effect of the last request."""
    def cancel(self, pending: PendingResponse) -> None:
        """The request behind ``pending`` went away: stop waiting for it."""


class VssHost:
    """Serves ``vss`` (an :class:`EventService`, or a simulation holding one) as a device handler.

    ``fallback`` gets every request that is not for the event service (or the
    device and media services, with ``device_service=True``); without one they
    get 404.  ``vss.device`` / ``vss.media``, when present, serve those.
    ``clock`` is wall-clock epoch seconds (the service's ``now``).  Call
    :meth:`start` inside the running loop (arms the timer) and :meth:`close`
    at the end (fails the waiting polls with 503).
    """

    def __init__(self, vss: EventSource, *, fallback: Handler | None = None,
                 device_service: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.vss = vss
        service = vss if isinstance(vss, EventService) else getattr(vss, "service", None)
        if not isinstance(service, EventService):
            raise TypeError(f"VssHost needs an EventService or an object with one as .service, "
                            f"got {type(vss).__name__}")
        self.events = service
        device, media = getattr(vss, "device", None), getattr(vss, "media", None)
        self.device = device if isinstance(device, DeviceService) else None
        self.media = media if isinstance(media, MediaService) else None
        self.fallback = fallback
        self.device_service = device_service
        self.clock = clock
        self._waiting: dict[PendingResponse, asyncio.Future[SoapResponse]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Arm the timer (poll timeouts, simulated changes)."""
        self._loop = asyncio.get_running_loop()
        self._rearm()

    async def close(self) -> None:
        """Stop the timer; polls still waiting get ``503``."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for pending, fut in list(self._waiting.items()):
            self.vss.cancel(pending)
            if not fut.done():
                fut.set_result(SoapResponse(503, (("content-type", "text/plain"),),
                                            b"service stopping\n"))
        self._waiting.clear()

    @property
    def waiting(self) -> int:
        """How many PullMessages requests are blocked right now."""
        return len(self._waiting)

    # ------------------------------------------------------------------ changes

    def change(self, action: Callable[[float], Completions]) -> int:
        """Run a resource update ``action(now)`` and deliver the polls it answered.

        E.g. ``host.change(lambda now: vss.set_camera_offline(3, True, now))``;
        returns how many waiting polls were answered.
        """
        done = action(self.clock())
        self._deliver(done + self.vss.take_completed())
        self._rearm()
        return len(done)

    def _deliver(self, done: Completions) -> None:
        for pending, answer in done:
            fut = self._waiting.pop(pending, None)
            if fut is not None and not fut.done():
                fut.set_result(answer)

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closed or self._loop is None:
            return
        deadline = self.vss.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - self.clock())
            self._timer = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        try:
            self._deliver(self.vss.handle_timeout(self.clock()) + self.vss.take_completed())
        except Exception:  # a bug below must not stop the timer for everyone
            log.exception("event service timer failed")
        self._rearm()

    # ------------------------------------------------------------------ requests

    async def __call__(self, request: TunneledRequest) -> Response:
        path = request.path.split("?", 1)[0].rstrip("/")
        cfg = self.events.config
        if path == cfg.service_path.rstrip("/") or path.startswith(
                cfg.pullpoint_path.rstrip("/")):
            return await self._events(request)
        soap_paths = {DEVICE_SERVICE_PATH} | (
            {MEDIA_SERVICE_PATH, MEDIA2_SERVICE_PATH} if self.media is not None else set())
        if self.device_service and path in soap_paths:
            if request.method != "POST":  # a SOAP endpoint: say so, not "no service"
                return Response(405, (("content-type", "text/plain"), ("allow", "POST")),
                                f"{path} is a SOAP 1.2 endpoint: POST an envelope\n".encode())
            if path == DEVICE_SERVICE_PATH:
                return await self._device_service(request)
            return await self._media_service(request, path)
        if self.fallback is not None:
            return await self.fallback(request)
        return Response(404, (("content-type", "text/plain"),),
                        f"no service at {request.path}\n".encode())

    @staticmethod
    def _headers(request: TunneledRequest) -> list[tuple[str | bytes, str | bytes]]:
        headers: list[tuple[str | bytes, str | bytes]] = list(request.headers)
        if request.scheme:
            headers.append((":scheme", request.scheme))
        if request.authority:
            headers.append((":authority", request.authority))
        return headers

    async def _events(self, request: TunneledRequest) -> Response:
        body = await request.body(limit=_BODY_LIMIT)
        now = self.clock()
        # Simulated changes and timeouts that fell due run first (SimulatedVss.handle does too).
        early = self.vss.handle_timeout(now) if self._due(now) else []
        result = self.events.handle(request.method, request.path, self._headers(request), body,
                                    now, requester=request.user_level)
        self._deliver(early + self.vss.take_completed())
        if isinstance(result, PendingResponse):
            fut: asyncio.Future[SoapResponse] = asyncio.get_running_loop().create_future()
            self._waiting[result] = fut
            self._rearm()
            try:
                answer = await fut
            except asyncio.CancelledError:  # the cloud reset the stream
                if self._waiting.pop(result, None) is not None:
                    self.vss.cancel(result)
                    self._rearm()
                raise
        else:
            answer = result
            self._rearm()
        return Response(answer.status, answer.headers, answer.body)

    def _due(self, now: float) -> bool:
        deadline = self.vss.next_deadline()
        return deadline is not None and deadline <= now

    async def _device_service(self, request: TunneledRequest) -> Response:
        body = await request.body(limit=_BODY_LIMIT)
        if self.device is not None:
            answer = self.device.handle(body, request.header("content-type"), now=self.clock(),
                                        scheme=request.scheme, authority=request.authority,
                                        requester=request.user_level)
        else:
            answer = handle_device_service(body, request.header("content-type"),
                                           scheme=request.scheme, authority=request.authority,
                                           events_path=self.events.config.service_path)
        return Response(answer.status, answer.headers, answer.body)

    async def _media_service(self, request: TunneledRequest, path: str) -> Response:
        assert self.media is not None
        body = await request.body(limit=_BODY_LIMIT)
        serve = self.media.handle_media if path == MEDIA_SERVICE_PATH else self.media.handle_media2
        answer = serve(body, request.header("content-type"), scheme=request.scheme,
                       authority=request.authority, requester=request.user_level)
        return Response(answer.status, answer.headers, answer.body)
