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
from ..errors import ConfigStoreError, ConfigurationError, RemoteProtocolError, SoapFault
from ..io.store import ConfigStore
from ..services.uplink import ConfigurationChange, UplinkService
from ..soap import parse_fault
from ..status import Status
from ._common import Response, UplinkSpec
from .device import DeviceAgent, Handler, TunneledRequest

__all__ = ["CAPABILITIES", "PLAINTEXT_CAPABILITIES", "SERVICE_PATH", "ConfiguredDevice"]

log = logging.getLogger("uplink62676.device")

#: Where the configuration service answers (an example path, found through GetServices).
SERVICE_PATH = "/onvif/uplink_service"

#: What the adapters implement: both mechanisms, both authentication modes.
CAPABILITIES = Capabilities(max_uplinks=8, protocols=("https", "wss"),
                            authorization_modes=("mTLS", "AccessToken"))

#: With ``--plaintext`` (tests, local experiments) the device can only run ``http``/``ws``
#: uplinks, so those are what SetUplink accepts -- and says so when refusing ``https``.
PLAINTEXT_CAPABILITIES = Capabilities(max_uplinks=8, protocols=("http", "ws"),
                                      authorization_modes=("mTLS", "AccessToken"))

SpecFactory = Callable[[str, tuple[str, ...]], UplinkSpec]


class ConfiguredDevice:
    """Handler + configuration store + uplink service, wired to a :class:`DeviceAgent`.

    ``seed``: configurations (e.g. the command line's ``--remote``) added to the
    store when no stored entry has their RemoteAddress; from then on they are
    ordinary configuration, listed by GetUplinks and removable by DeleteUplink.
    A damaged store starts from its previous good generation
    (:attr:`ConfigStore.recovered`), logged as an error and reported in every
    uplink's ``Error`` until the configuration changes.
    """

    def __init__(self, path: str | os.PathLike[str], fallback: Handler, spec_factory: SpecFactory,
                 *, capabilities: Capabilities = CAPABILITIES, apply_delay: float = 0.2,
                 seed: Iterable[UplinkConfiguration] = ()) -> None:
        self.store = ConfigStore(path)
        self.fallback = fallback
        self.spec_factory = spec_factory
        self.apply_delay = apply_delay
        self.agent: DeviceAgent | None = None
        self._extra: list[UplinkSpec] = []
        self._tasks: set[asyncio.Task[None]] = set()
        stored = self.store.load()
        #: Set when the store was damaged and its previous generation is in use.
        self.recovery: str | None = None
        if self.store.recovered is not None:
            self.recovery = ("configuration store was damaged; running its previous generation "
                             f"({self.store.recovered})")
            log.error("%s", self.recovery)
        self.service = UplinkService(capabilities, configurations=stored,
                                     status_provider=self._status, on_change=self._changed)
        known = {c.remote_address for c in stored}
        for config in seed:
            if config.remote_address in known:
                continue
            try:
                self.service.set_uplink(config)
            except SoapFault as fault:
                raise ConfigurationError(
                    f"uplink {config.remote_address!r} cannot be configured: {fault.reason}"
                ) from None
            log.info("configuration: %s added to the store", config.remote_address)

    def specs(self, configurations: Iterable[UplinkConfiguration]) -> list[UplinkSpec]:
        """What the agent runs for the given stored configurations."""
        return [self.spec_factory(c.remote_address, c.user_level) for c in configurations]

    def initial(self, extra: Iterable[UplinkSpec] = ()) -> list[UplinkSpec]:
        """The uplinks to start with: the stored ones plus ``extra`` (not in the service)."""
        self._extra = list(extra)
        return self.specs(self.service.configurations) + self._extra

    def _status(self, remote_address: str) -> tuple[Status, str | None]:
        if self.agent is None:
            return Status.OFFLINE, self.recovery
        status, error = self.agent.status(remote_address)
        return status, error or self.recovery

    def _changed(self, change: ConfigurationChange) -> None:
        # Build the specs first: a configuration the adapters cannot run is refused
        # (the service answers a fault and rolls back) before anything is persisted.
        what = f"{change.kind.value} {change.remote_address}"
        try:
            wanted = self.specs(change.configurations) + self._extra
        except ConfigurationError as exc:
            log.warning("configuration change refused (%s): %s", what, exc)
            raise SoapFault("env:Sender", ("ter:InvalidArgVal",),
                            f"this device cannot run the uplink: {exc}") from None
        try:
            self.store.on_change(change)  # persisted before the response (CFG-R9)
        except ConfigStoreError as exc:
            log.error("configuration change not stored (%s): %s", what, exc)
            raise SoapFault("env:Receiver", ("ter:Action",),
                            "the device cannot store the configuration "
                            "(its configuration store is not writable)") from None
        self.recovery = None  # a good generation was just written
        log.info("configuration %s", what)
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
        if request.path.split("?", 1)[0] == SERVICE_PATH and request.method != "POST":
            return Response(405, (("content-type", "text/plain"), ("allow", "POST")),
                            f"{SERVICE_PATH} is a SOAP 1.2 endpoint: POST an envelope\n".encode())
        if request.path.split("?", 1)[0] == SERVICE_PATH and request.method == "POST":
            body = await request.body(limit=1024 * 1024)
            answer = self.service.handle(body, content_type=request.header("content-type"),
                                         user_level=request.user_level)
            if answer.status >= 400:
                self._log_refusal(answer.status, answer.body)
            return Response(answer.status, answer.headers, answer.body)
        return await self.fallback(request)

    @staticmethod
    def _log_refusal(status: int, body: bytes) -> None:
        try:
            fault = parse_fault(body, status=status)
        except (RemoteProtocolError, SoapFault) as exc:
            log.warning("uplink service answered %d (%s)", status, exc)
            return
        log.warning("uplink service refused a request: %s %s: %s", fault.code,
                    "/".join(fault.subcodes), fault.reason)
