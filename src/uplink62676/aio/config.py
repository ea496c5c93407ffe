"""Device end with a configuration store: the uplinks come from, and change through, the service.

:class:`ConfiguredDevice` loads the uplink configurations from a
:class:`~uplink62676.store.ConfigStore`, serves the uplink configuration
service (GetUplinks / SetUplink / DeleteUplink / GetServiceCapabilities) at
``/onvif/uplink_service`` through the uplink itself, with the uplink's
UserLevel (UPL-41), reports each uplink's live Status/Error, persists every
accepted change and applies it to the running :class:`DeviceAgent`: new
entries start, changed ones restart at once (UPL-R25), deleted ones stop.
Everything else goes to the fallback handler.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable

from ..config import Capabilities, UplinkConfiguration
from ..io.store import ConfigStore
from ..services.uplink import ConfigurationChange, UplinkService
from ..status import Status
from ._common import Response, UplinkSpec
from .device import DeviceAgent, Handler, TunneledRequest

__all__ = ["SERVICE_PATH", "ConfiguredDevice"]

log = logging.getLogger("uplink62676.device")

#: Where the configuration service answers (an example path, found through GetServices).
SERVICE_PATH = "/onvif/uplink_service"

#: What the adapters implement: both mechanisms, both authentication modes.
CAPABILITIES = Capabilities(max_uplinks=8, protocols=("https", "wss"),
                            authorization_modes=("mTLS", "AccessToken"))

SpecFactory = Callable[[str, tuple[str, ...]], UplinkSpec]


class ConfiguredDevice:
    """Handler + configuration store + uplink service, wired to a :class:`DeviceAgent`."""

    def __init__(self, path: str | os.PathLike[str], fallback: Handler, spec_factory: SpecFactory,
                 *, capabilities: Capabilities = CAPABILITIES, apply_delay: float = 0.2) -> None:
        self.store = ConfigStore(path)
        self.fallback = fallback
        self.spec_factory = spec_factory
        self.apply_delay = apply_delay
        self.agent: DeviceAgent | None = None
        self._extra: list[UplinkSpec] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.service = UplinkService(capabilities, configurations=self.store.load(),
                                     status_provider=self._status, on_change=self._changed)

    def specs(self, configurations: Iterable[UplinkConfiguration]) -> list[UplinkSpec]:
        return [self.spec_factory(c.remote_address, c.user_level) for c in configurations]

    def initial(self, extra: Iterable[UplinkSpec] = ()) -> list[UplinkSpec]:
        """The uplinks to start with: the stored ones plus ``extra`` (not in the service)."""
        self._extra = list(extra)
        return self.specs(self.service.configurations) + self._extra

    def _status(self, remote_address: str) -> tuple[Status, str | None]:
        if self.agent is None:
            return Status.OFFLINE, None
        return self.agent.status(remote_address)

    def _changed(self, change: ConfigurationChange) -> None:
        # Build the specs first: a configuration the adapters cannot run is refused
        # (the service answers a fault and rolls back) before anything is persisted.
        wanted = self.specs(change.configurations) + self._extra
        self.store.on_change(change)  # persisted before the response (CFG-R9)
        log.info("configuration %s: %s", change.kind.value, change.remote_address)
        if self.agent is not None:
            agent = self.agent
            loop = asyncio.get_running_loop()
            # Let the SOAP response leave before a restart could cut its own uplink.
            loop.call_later(self.apply_delay, lambda: self._apply(agent, wanted))

    def _apply(self, agent: DeviceAgent, wanted: list[UplinkSpec]) -> None:
        task = asyncio.get_running_loop().create_task(agent.set_uplinks(wanted))
        self._tasks.add(task)  # keep it alive until done
        task.add_done_callback(self._tasks.discard)

    async def __call__(self, request: TunneledRequest) -> Response:
        if request.path.split("?", 1)[0] == SERVICE_PATH and request.method == "POST":
            body = await request.body(limit=1024 * 1024)
            answer = self.service.handle(body, content_type=request.header("content-type"),
                                         user_level=request.user_level)
            return Response(answer.status, answer.headers, answer.body)
        return await self.fallback(request)
