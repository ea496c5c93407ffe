"""The same scenarios against both device drivers (asyncio and threaded) over loopback TLS.

Both drive :class:`uplink62676.agent.UplinkSession`; these tests show they carry out its
commands alike: request body and UserLevel (UPL-4, UPL-41), a streamed answer under
back-pressure, a failing handler (500), a stream the cloud resets (the handler stops), and a
cloud that goes silent after the upgrade (PINGs at 10 s and 20 s, Offline after more than 30 s:
UPL-45..49, UPL-R23) with the PING frames read off the cloud's socket.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from _adapters_util import Pki, fast_schedule, make_pki
from test_aio_device import _SilentCloud
from uplink62676 import TransportError
from uplink62676 import aio as aio_adapter
from uplink62676 import threaded as threaded_adapter
from uplink62676.aio import CloudServer
from uplink62676.io.common import Response, UplinkSpec
from uplink62676.settings import DeviceSettings, LivenessSettings
from uplink62676.status import Status

T = TypeVar("T")
KINDS = ["aio", "threaded"]
PING_FRAME = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00UPLK"  # PING, no ACK flag, stream 0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class LoopThread:
    """An asyncio loop on a thread of its own; ``run`` blocks on a coroutine there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Cloud(LoopThread):
    """The asyncio CloudServer, driven from the test's thread."""

    def __init__(self, pki: Pki) -> None:
        super().__init__()

        async def make() -> CloudServer:
            cloud = CloudServer(ssl_context=pki.cloud_ctx())
            await cloud.start("127.0.0.1", 0)
            return cloud

        self.server = self.run(make())
        self.port = self.server.port

    def close(self) -> None:
        self.run(self.server.close())
        super().close()


class SilentCloud(LoopThread):
    """test_aio_device's silent cloud (upgrade accepted, then not another octet) on a loop
    of its own; ``received`` holds what the device sent (SETTINGS, ACK, later its PINGs)."""

    def __init__(self, pki: Pki) -> None:
        super().__init__()
        self.cloud = _SilentCloud(pki)
        self.port = self.run(self.cloud.start())

    def pings(self) -> int:
        return bytes(self.cloud.received).count(PING_FRAME)

    def close(self) -> None:
        self.run(self.cloud.close())
        super().close()


class Device:
    """Either DeviceAgent behind the same blocking calls (the asyncio one on its own loop)."""

    def __init__(self, kind: str, handler: Any, spec: UplinkSpec, **kw: Any) -> None:
        self.kind = kind
        self.address = spec.remote_address
        self.offset = 0.0
        self.history: list[tuple[Status, str | None]] = []
        kw.setdefault("clock", lambda: time.monotonic() + self.offset)
        kw["on_status"] = lambda address, status, error: self.history.append((status, error))
        self._loop: LoopThread | None = None
        self.agent: Any
        if kind == "aio":
            self._loop = LoopThread()
            self.agent = aio_adapter.DeviceAgent(handler, identity="cam-1", uplinks=[spec],
                                                 schedule_factory=fast_schedule, **kw)
        else:
            self.agent = threaded_adapter.DeviceAgent(handler, identity="cam-1", uplinks=[spec],
                                                      schedule_factory=fast_schedule, **kw)

    def __enter__(self) -> Device:
        if self._loop is not None:
            self._loop.run(self.agent.start())
        else:
            self.agent.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.run(self.agent.stop())
            self._loop.close()
        else:
            self.agent.stop()

    def wait_status(self, status: Status, timeout: float = 10.0) -> str | None:
        if self._loop is not None:
            result: str | None = self._loop.run(
                self.agent.wait_status(self.address, status, timeout), timeout + 5)
            return result
        return self.agent.wait_status(self.address, status, timeout)  # type: ignore[no-any-return]

    def advance(self, seconds: float) -> None:
        """Move the device's clock and make it look at its timers."""
        self.offset = seconds
        if self._loop is not None:
            self._loop.loop.call_soon_threadsafe(self.agent.poke)
        else:
            self.agent.poke()


def _spec(pki: Pki, port: int, path: str) -> UplinkSpec:
    return UplinkSpec(f"https://localhost:{port}{path}", pki.device_ctx("cam-1"),
                      user_level="Operator")


def _until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


# --- handlers, one of each kind per scenario -------------------------------------------------------


def echo(kind: str) -> Any:
    def answer(req: Any, body: bytes) -> Response:
        return Response(200, (("content-type", "text/plain"),), b"%s %s %s %d" % (
            req.method.encode(), req.path.encode(), " ".join(req.user_level).encode(), len(body)))

    async def aio_echo(req: aio_adapter.TunneledRequest) -> Response:
        return answer(req, await req.body())

    def threaded_echo(req: threaded_adapter.TunneledRequest) -> Response:
        return answer(req, req.body())

    return aio_echo if kind == "aio" else threaded_echo


def endless(kind: str, produced: list[int], closed: threading.Event) -> Any:
    """A live stream that never ends; ``closed`` is set when the device lets go of it."""
    chunk = b"v" * 16384

    def gen() -> Iterator[bytes]:
        try:
            while True:
                produced[0] += len(chunk)
                yield chunk
        finally:
            closed.set()

    async def agen() -> AsyncIterator[bytes]:
        inner = gen()
        try:
            for piece in inner:
                yield piece
        finally:
            inner.close()

    async def aio_media(req: aio_adapter.TunneledRequest) -> Response:
        return Response(200, (("content-type", "video/x-test"),), agen())

    def threaded_media(req: threaded_adapter.TunneledRequest) -> Response:
        return Response(200, (("content-type", "video/x-test"),), gen())

    return aio_media if kind == "aio" else threaded_media


def failing(kind: str) -> Any:
    async def aio_fail(req: aio_adapter.TunneledRequest) -> Response:
        raise RuntimeError("boom")

    def threaded_fail(req: threaded_adapter.TunneledRequest) -> Response:
        raise RuntimeError("boom")

    return aio_fail if kind == "aio" else threaded_fail


def waits_for_body(kind: str, started: threading.Event, stopped: threading.Event) -> Any:
    """Reads the first chunk, then waits for more that never comes."""

    async def aio_wait(req: aio_adapter.TunneledRequest) -> Response:
        await req.read()
        started.set()
        try:
            await req.read()
        except asyncio.CancelledError:
            stopped.set()  # the driver cancelled the handler's task
            raise
        return Response(200)

    def threaded_wait(req: threaded_adapter.TunneledRequest) -> Response:
        req.read()
        started.set()
        try:
            req.read(timeout=20)
        except TransportError:
            stopped.set()  # the blocked read ended with the reset
            raise
        return Response(200)

    return aio_wait if kind == "aio" else threaded_wait


# --- scenarios ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_request_with_body_and_user_level(pki: Pki, kind: str) -> None:
    """UPL-4, UPL-41: the body arrives whole, the UserLevel is the uplink's."""
    cloud = Cloud(pki)
    try:
        with Device(kind, echo(kind), _spec(pki, cloud.port, "/body")) as device:
            assert device.wait_status(Status.CONNECTED) is None
            cloud.run(cloud.server.wait_for_device("cam-1"))
            r = cloud.run(cloud.server.request("cam-1", "POST", "/onvif/device_service",
                                               body=b"z" * 150_000))
            assert (r.status, r.body) == (200, b"POST /onvif/device_service Operator 150000")
    finally:
        cloud.close()


@pytest.mark.parametrize("kind", KINDS)
def test_streamed_response_with_back_pressure(pki: Pki, kind: str) -> None:
    """Design 'slow read': a cloud that does not read pauses the producer (bounded by windows +
    high_water); it resumes when the cloud reads; a cancel lets go of the producer."""
    produced, closed = [0], threading.Event()
    cloud = Cloud(pki)
    try:
        with Device(kind, endless(kind, produced, closed), _spec(pki, cloud.port, "/media"),
                    high_water=32 * 1024):
            cloud.run(cloud.server.wait_for_device("cam-1"))
            stream = cloud.run(cloud.server.open_stream("cam-1", "GET", "/live", body=None))
            time.sleep(0.5)
            stalled = produced[0]
            assert stalled <= 65535 + 32 * 1024 + 2 * 16384, stalled
            time.sleep(0.2)
            assert produced[0] == stalled  # paused, not growing

            async def drain() -> int:
                got = 0
                while got < 500_000:
                    got += len(await stream.read())
                stream.cancel()
                return got

            assert cloud.run(drain()) >= 500_000
            assert produced[0] > stalled
            assert closed.wait(5), "the producer was not closed after the cloud's cancel"
    finally:
        cloud.close()


@pytest.mark.parametrize("kind", KINDS)
def test_handler_exception_answers_500(pki: Pki, kind: str) -> None:
    cloud = Cloud(pki)
    try:
        with Device(kind, failing(kind), _spec(pki, cloud.port, "/fail")):
            cloud.run(cloud.server.wait_for_device("cam-1"))
            r = cloud.run(cloud.server.request("cam-1", "GET", "/x", body=None))
            assert (r.status, r.body) == (500, b"handler failed\n")
            assert (b"content-type", b"text/plain") in r.headers
    finally:
        cloud.close()


@pytest.mark.parametrize("kind", KINDS)
def test_cloud_reset_stops_the_handler(pki: Pki, kind: str) -> None:
    """The cloud gives up a request (RST_STREAM CANCEL): the handler serving it is stopped
    (asyncio: its task is cancelled; threaded: its blocked read raises)."""
    started, stopped = threading.Event(), threading.Event()
    cloud = Cloud(pki)
    try:
        with Device(kind, waits_for_body(kind, started, stopped),
                    _spec(pki, cloud.port, "/reset")) as device:
            cloud.run(cloud.server.wait_for_device("cam-1"))

            async def upload() -> AsyncIterator[bytes]:
                yield b"first"
                await asyncio.sleep(60)

            async def give_up() -> None:
                task = asyncio.create_task(
                    cloud.server.open_stream("cam-1", "POST", "/wait", body=upload()))
                while not started.is_set():
                    await asyncio.sleep(0.01)
                task.cancel()  # the cloud side gives up: RST_STREAM
                with pytest.raises(asyncio.CancelledError):
                    await task

            cloud.run(give_up())
            assert stopped.wait(5), "the handler was not stopped"
            r = cloud.run(cloud.server.request("cam-1", "GET", "/after", body=None))
            assert r.status == 200  # the uplink is fine
            assert device.wait_status(Status.CONNECTED) is None
    finally:
        cloud.close()


@pytest.mark.parametrize("kind", KINDS)
def test_silent_cloud_gets_pings_at_10_and_20_s_then_offline(pki: Pki, kind: str) -> None:
    """UPL-45..49, UPL-R23 with the device's clock moved, not slept: after 10 s of silence a PING
    reaches the cloud's socket, after 20 s another, after more than 30 s the uplink is Offline."""
    silent = SilentCloud(pki)
    try:
        with Device(kind, echo(kind), _spec(pki, silent.port, "/quiet")) as device:
            device.wait_status(Status.CONNECTED)
            time.sleep(0.2)
            assert silent.pings() == 0
            device.advance(9.0)
            time.sleep(0.2)
            assert silent.pings() == 0
            device.advance(10.5)
            assert _until(lambda: silent.pings() == 1), silent.pings()
            device.advance(20.5)
            assert _until(lambda: silent.pings() == 2), silent.pings()
            assert device.history[-1] == (Status.CONNECTED, None)
            device.advance(31.0)
            lost = (Status.OFFLINE, "no traffic for 30 s")
            assert _until(lambda: lost in device.history), device.history
            assert device.history.count((Status.CONNECTED, None)) == 1  # no earlier loss
    finally:
        silent.close()


@pytest.mark.parametrize("kind", KINDS)
def test_silent_cloud_timers_fire_on_their_own(pki: Pki, kind: str) -> None:
    """The timer is re-armed when the link comes up, without a poke: with short liveness
    timers in real time the PINGs go out and the link is declared lost."""
    liveness = LivenessSettings(ping_after=(0.4, 0.8), dead_after=1.2)
    silent = SilentCloud(pki)
    try:
        with Device(kind, echo(kind), _spec(pki, silent.port, "/quiet"),
                    settings=DeviceSettings(liveness=liveness),
                    clock=time.monotonic) as device:
            device.wait_status(Status.CONNECTED)
            lost = (Status.OFFLINE, "no traffic for 1.2 s")
            assert _until(lambda: lost in device.history), device.history
            assert silent.pings() >= 2
    finally:
        silent.close()
