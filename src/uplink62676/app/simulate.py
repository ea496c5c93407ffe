"""A simulated VSS of N cameras serving resource queries (application layer).

Each camera gets an Annex A device ID (zone of Nanjing, agency 00, device
type 132 IPC) used as its remote-token prefix, one ``VideoSource`` (``vs_1``)
and two ``MediaProfile`` resources (``prof_1`` main stream, ``prof_2`` sub
stream), a location spread over a disc around the city centre, and ONVIF
discovery scopes.  ``device`` (a :class:`DeviceService`) and ``media`` (a
:class:`MediaService` with every camera's two profiles) answer the calls a
stock ONVIF client makes first.  :meth:`SimulatedVss.handle` is the event service as a
bytes-in / bytes-out request handler ``(method, path, headers, body, now) ->
SoapResponse | PendingResponse``.  With a seed, :meth:`SimulatedVss.handle_timeout`
toggles random cameras offline and online (and occasionally renames one)
at exponentially distributed times, so changes flow to subscribers.
"""

from __future__ import annotations

import math
import random

from .. import __version__
from ..deviceid import DeviceId
from ..namespaces import TEV, TR2, TRT, TUP
from ..query.pullpoint import PullPointManager
from ..query.resources import GeoLocation, Resource, ResourceRegistry
from ..services.device import (
    MEDIA2_SERVICE_PATH,
    MEDIA_SERVICE_PATH,
    UPLINK_SERVICE_PATH,
    DeviceInformation,
    DeviceService,
    Scope,
    ServiceEntry,
)
from ..services.events import EventService, EventServiceSettings, Headers, PendingResponse
from ..services.media import MediaProfile, MediaService
from ..soap import SoapResponse
from ..tokens import RemoteToken

__all__ = ["CITY_CENTRE", "Camera", "SimulatedVss"]

#: Nanjing, the city of the resource-query examples (lat, lon).
CITY_CENTRE = (32.0436, 118.7781)
_DISTRICTS = ("xuanwu", "qinhuai", "jianye", "gulou", "qixia", "yuhuatai", "jiangning")
Completions = list[tuple[PendingResponse, SoapResponse]]


class Camera:
    """One simulated camera: its device ID and the resources it contributes."""

    __slots__ = ("device_id", "district", "index", "lat", "lon", "offline")

    def __init__(self, index: int, device_id: str, lat: float, lon: float, district: str) -> None:
        self.index = index
        self.device_id = device_id
        self.lat = lat
        self.lon = lon
        self.district = district
        self.offline = False

    def tokens(self) -> list[str]:
        """Remote tokens of the camera's resources."""
        return [str(RemoteToken(self.device_id, local)) for local in ("vs_1", "prof_1", "prof_2")]

    def resources(self, name_suffix: str = "") -> list[Resource]:
        """The camera's VideoSource and two MediaProfiles."""
        scopes = (
            "onvif://www.onvif.org/Profile/Streaming",
            "onvif://www.onvif.org/location/city/nanjing",
            f"onvif://www.onvif.org/location/district/{self.district}",
            "onvif://www.onvif.org/hardware/IPC-200",
            f"onvif://www.onvif.org/name/cam-{self.index}",
        )
        loc = GeoLocation(round(self.lon, 7), round(self.lat, 7), 12.0)
        vs, main, sub = self.tokens()
        label = f"Camera {self.index}{name_suffix}"
        return [
            Resource(vs, "VideoSource", f"{label} video source", loc, scopes, self.offline),
            Resource(main, "MediaProfile", f"{label} main stream", loc, scopes, self.offline),
            Resource(sub, "MediaProfile", f"{label} sub stream", loc, scopes, self.offline),
        ]

    def media_profiles(self) -> list[MediaProfile]:
        """The two profiles for Media / Media2: main 1080p and sub 360p, H.264."""
        vs, main, sub = self.tokens()
        label = f"Camera {self.index}"
        return [
            MediaProfile(main, f"{label} main stream", vs, f"/media/{self.device_id}/main"),
            MediaProfile(sub, f"{label} sub stream", vs, f"/media/{self.device_id}/sub",
                         width=640, height=360, bitrate=512),
        ]


class SimulatedVss:
    """A VSS with ``cameras`` cameras behind an :class:`EventService`.

    ``spread`` is the radius in metres of the disc the cameras are spread
    over; ``change_rate`` the mean number of camera changes per second
    (0 disables them).  ``now`` is wall-clock epoch seconds.
    """

    def __init__(self, cameras: int = 100, *, seed: int = 0, now: float = 0.0,
                 centre: tuple[float, float] = CITY_CENTRE, spread: float = 5000.0,
                 change_rate: float = 0.2, config: EventServiceSettings | None = None,
                 id_seed: bytes | None = None) -> None:
        self.rng = random.Random(seed)
        self.change_rate = change_rate
        self.cameras: list[Camera] = []
        lat0, lon0 = centre
        registry = ResourceRegistry()
        for i in range(cameras):
            r = spread * math.sqrt(self.rng.random())
            theta = self.rng.uniform(0, 2 * math.pi)
            lat = lat0 + math.degrees(r * math.cos(theta) / 6_371_000.0)
            lon = lon0 + math.degrees(r * math.sin(theta) / (6_371_000.0 * math.cos(
                math.radians(lat0))))
            district_no = i % len(_DISTRICTS)
            device_id = DeviceId.build(province=32, city=1, district=district_no + 2,
                                       unit=1, agency=0, device_type=132, network_id=0,
                                       sequence=i + 1)
            cam = Camera(i, str(device_id), lat, lon, _DISTRICTS[district_no])
            self.cameras.append(cam)
            for res in cam.resources():
                registry.put(res, now)
        cfg = config if config is not None else EventServiceSettings()
        seeded = self.rng.randbytes(16)  # drawn either way: the seed's sequence stays the same
        self.service = EventService(PullPointManager(
            registry, cfg.pullpoints, id_seed=id_seed if id_seed is not None else seeded), cfg)
        self.media = MediaService([p for cam in self.cameras for p in cam.media_profiles()])
        self.device = DeviceService(DeviceInformation(
            manufacturer="uplink62676", model="Simulated VSS", firmware_version=__version__,
            serial_number=f"SIM-{seed}", hardware_id=f"SimVSS-{cameras}",
            hostname="simulated-vss", scopes=(
                Scope("onvif://www.onvif.org/Profile/Streaming"),
                Scope("onvif://www.onvif.org/hardware/Simulated_VSS"),
                Scope("onvif://www.onvif.org/name/simulated-vss"),
                Scope("onvif://www.onvif.org/location/city/nanjing", fixed=False))), [
            ServiceEntry(TEV, cfg.service_path, capabilities=self.service.service_capabilities),
            ServiceEntry(TRT, MEDIA_SERVICE_PATH, capabilities=self.media.media_capabilities),
            ServiceEntry(TR2, MEDIA2_SERVICE_PATH, capabilities=self.media.media2_capabilities),
            ServiceEntry(TUP, UPLINK_SERVICE_PATH),
        ])
        self._next_change = self._schedule(now)
        self._renames = 0
        self._deferred: Completions = []

    def _schedule(self, now: float) -> float | None:
        if self.change_rate <= 0 or not self.cameras:
            return None
        return now + self.rng.expovariate(self.change_rate)

    # -- request handling --------------------------------------------------------

    def handle(self, method: str, path: str,
               headers: Headers, body: bytes,
               now: float) -> SoapResponse | PendingResponse:
        """Serve one HTTP request to the event service (see :class:`EventService`).

        Simulated changes that fell due first run before the request; polls
        they answered are returned by :meth:`take_completed`.
        """
        self._deferred += self.handle_timeout(now)
        return self.service.handle(method, path, headers, body, now)

    def take_completed(self) -> Completions:
        """Polls completed as a side effect of the last :meth:`handle` calls."""
        out, self._deferred = self._deferred + self.service.take_completed(), []
        return out

    def stop_changes(self) -> None:
        """Stop the random camera changes (explicit changes still work)."""
        self.change_rate = 0.0
        self._next_change = None

    def next_deadline(self) -> float | None:
        """Earliest of the next simulated change and the service's deadlines."""
        times = [t for t in (self._next_change, self.service.next_deadline()) if t is not None]
        return min(times) if times else None

    def handle_timeout(self, now: float) -> Completions:
        """Run due camera changes and answer polls whose timeout passed."""
        out: Completions = []
        while self._next_change is not None and self._next_change <= now:
            at = self._next_change
            out += self._random_change(at)
            self._next_change = self._schedule(at)
        out += self.service.handle_timeout(now)
        return out

    def cancel(self, pending: PendingResponse) -> None:
        """The request of ``pending`` went away."""
        self.service.cancel(pending)

    # -- changes -------------------------------------------------------------------

    def set_camera_offline(self, index: int, offline: bool, now: float) -> Completions:
        """Take a camera offline or bring it back (RQ-11 transitions of its resources)."""
        cam = self.cameras[index]
        cam.offline = offline
        out: Completions = []
        for token in cam.tokens():
            out += self.service.set_offline(token, offline, now)
        return out

    def rename_camera(self, index: int, now: float) -> Completions:
        """Change a camera's names (a plain ``Changed`` for subscribers selecting Name)."""
        self._renames += 1
        out: Completions = []
        for res in self.cameras[index].resources(f" (rev {self._renames})"):
            out += self.service.put_resource(res, now)
        return out

    def remove_camera(self, index: int, now: float) -> Completions:
        """Remove a camera's resources (``Deleted``)."""
        out: Completions = []
        for token in self.cameras[index].tokens():
            out += self.service.remove_resource(token, now)
        return out

    def add_camera(self, index: int, now: float) -> Completions:
        """(Re-)add a camera's resources (``Initialized``)."""
        out: Completions = []
        for res in self.cameras[index].resources():
            out += self.service.put_resource(res, now)
        return out

    def _random_change(self, now: float) -> Completions:
        index = self.rng.randrange(len(self.cameras))
        if self.rng.random() < 0.8:
            return self.set_camera_offline(index, not self.cameras[index].offline, now)
        return self.rename_camera(index, now)
