"""The informative examples of IEC 62676-2-33 §7.8 (resource-query.md §11.1 live video, §11.2
forensic) end to end: a client speaks HTTP to the cloud's expose port, the cloud carries the
requests through a real uplink (loopback mTLS) to a device serving a simulated VSS of 1000
cameras.  Steps the simulated VSS does not serve (Media2 GetProfiles/GetStreamUri, RTSP,
tse:FindEvents, trp:GetReplayUri) are outside this library and not exercised."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from _adapters_util import Pki, aio, make_pki
from _city_util import DEVICE, City, city
from uplink62676.aio.query import QueryRunner
from uplink62676.deviceid import DeviceId
from uplink62676.query.client import Query, create_subscription_request
from uplink62676.query.geodesy import geodesic_distance
from uplink62676.query.resources import PropertyOperation
from uplink62676.tokens import RemoteToken

RADIUS = 100.0  # "a distance of 100 meters"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _incident(c: City) -> tuple[tuple[float, float], set[int]]:
    """A point with at least two cameras within 100 m, and the cameras within 100 m of it."""
    cams = c.vss.cameras
    for a in cams:
        for b in cams[a.index + 1:]:
            if geodesic_distance(a.lat, a.lon, b.lat, b.lon) < 120:
                near = ((a.lat + b.lat) / 2, (a.lon + b.lon) / 2)
                inside = {x.index for x in cams
                          if geodesic_distance(near[0], near[1], x.lat, x.lon) <= RADIUS}
                return near, inside
    raise AssertionError("no two cameras close together")


async def _next_batch(runner: QueryRunner, c: City, action: Callable[[float], object]) -> list:
    """Start a pull, let it block at the device, then run ``action`` there."""
    pull = asyncio.ensure_future(runner.step())
    async with asyncio.timeout(5):
        while c.host.waiting == 0:
            await asyncio.sleep(0.005)
    c.host.change(action)  # type: ignore[arg-type]
    step = await asyncio.wait_for(pull, 5)
    assert step.kind == "batch"
    return list(step.notifications)


@aio
async def test_live_video_example(pki: Pki) -> None:
    """RQ-22(a), RQ-12, RQ-R5, RQ-R7, RQ-9, RQ-2, RQ-11, RQ-10, RQ-21, RQ-20, UPL-R21 — §11.1:
    (1) the device's uplink is mutually authenticated; (2) CreatePullPointSubscription with a
    Concrete ``tns1:Resource/MediaProfile`` topic and a 100 m LocationFilter; (3) the answer's
    pull-point address is used by path through the front door; (4) PullMessages (MessageLimit
    100) returns Initialized for every media profile in the area -- both profiles of each
    camera, so the client can choose -- and then an empty answer at the timeout; (8) further
    pulls report Changed (offline), Deleted and Initialized as cameras change, and nothing
    for cameras outside the area."""
    async with city(pki, 1000, seed=11) as c:
        info = c.cloud.device(DEVICE)
        assert info is not None and info.auth == "mTLS"  # step 1
        near, inside = _incident(c)
        query = Query(near=near, radius=RADIUS, topics=("MediaProfile",))
        body = create_subscription_request(query).body
        assert b"tns1:Resource/MediaProfile" in body and b"Concrete" in body  # step 2
        assert b"<tt:LocationFilter>" in body and b"<tt:radius>100</tt:radius>" in body
        runner = QueryRunner(c.url, query, timeout=0.5, message_limit=100)
        try:
            assert (await runner.step()).kind == "subscribed"  # step 3
            assert runner.client.address is not None
            assert runner.target(runner.client.address).startswith(
                f"/devices/{DEVICE}/onvif/events/pullpoint")
            first = await runner.step()  # step 4
            assert {n.operation for n in first.notifications} == {PropertyOperation.INITIALIZED}
            expected = {t for i in inside for t in c.vss.cameras[i].tokens()[1:]}
            assert {n.token for n in first.notifications} == expected
            assert set(runner.client.mirror.resources) == expected
            for n in first.notifications:
                assert n.data is not None and n.data.location is not None
                assert geodesic_distance(near[0], near[1], n.data.location.lat,
                                         n.data.location.lon) <= RADIUS
            empty = await runner.step()  # nothing more: empty at the timeout (RQ-21)
            assert empty.kind == "batch" and empty.notifications == ()

            # step 8: a camera in the area goes offline -> Changed for its two profiles
            cam = min(inside)
            notes = await _next_batch(runner, c, lambda now: c.vss.set_camera_offline(
                cam, True, now))
            while len(notes) < 2:
                notes += (await runner.step()).notifications
            assert {(n.operation, n.token) for n in notes} == {
                (PropertyOperation.CHANGED, t) for t in c.vss.cameras[cam].tokens()[1:]}
            assert all(runner.client.mirror.resources[t].offline
                       for t in c.vss.cameras[cam].tokens()[1:])

            # a camera far away changes: the filter keeps it out; then one in the area is removed
            outside = next(x.index for x in c.vss.cameras if x.index not in inside)
            c.host.change(lambda now: c.vss.set_camera_offline(outside, True, now))
            notes = await _next_batch(runner, c, lambda now: c.vss.remove_camera(cam, now))
            while len(notes) < 2:
                notes += (await runner.step()).notifications
            assert {(n.operation, n.token) for n in notes} == {
                (PropertyOperation.DELETED, t) for t in c.vss.cameras[cam].tokens()[1:]}
            assert not set(c.vss.cameras[cam].tokens()) & set(runner.client.mirror.resources)

            notes = await _next_batch(runner, c, lambda now: c.vss.add_camera(cam, now))
            while len(notes) < 2:
                notes += (await runner.step()).notifications
            assert {n.operation for n in notes} == {PropertyOperation.INITIALIZED}
            assert set(runner.client.mirror.resources) == expected
            assert runner.client.reconnects == 0
            await runner.unsubscribe()
        finally:
            await runner.close()


@aio
async def test_forensic_example(pki: Pki) -> None:
    """RQ-12, RQ-R7, RQ-9, RQ-1, TOK-26 — §11.2: (2) CreatePullPointSubscription for
    ``tns1:Resource/VideoSource`` within 100 m; (3) PullMessages returns Initialized for every
    video source in the area, each a remote token ``<20-digit device ID>:vs_1`` the client
    would use as the search scope of tse:FindEvents (step 4, not served by the simulation)."""
    async with city(pki, 1000, seed=12) as c:
        near, inside = _incident(c)
        runner = QueryRunner(c.url, Query(near=near, radius=RADIUS, topics=("VideoSource",)),
                             timeout=0.0)
        try:
            notes = await runner.snapshot()
            await runner.unsubscribe()
        finally:
            await runner.close()
        assert {n.operation for n in notes} == {PropertyOperation.INITIALIZED}
        assert {n.token for n in notes} == {c.vss.cameras[i].tokens()[0] for i in inside}
        for n in notes:
            assert n.data is not None and n.data.kind == "VideoSource"
            remote = RemoteToken.parse(n.token or "")
            assert remote.local == "vs_1"
            DeviceId.parse(remote.prefix)  # Annex A device ID as the prefix
