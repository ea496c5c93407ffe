"""The asyncio host of the event service behind a real uplink over loopback TLS (aio/vss.py):
long polls as awaitables, answers from changes, timeouts and take_completed, cancel on reset,
GetServices XAddrs from ``:authority``, the uplink's UserLevel in the access check."""

from __future__ import annotations

import asyncio
import time

import pytest

from _adapters_util import Pki, aio, make_pki
from _city_util import DEVICE, city
from uplink62676 import SoapFault
from uplink62676.aio import Response, TunneledRequest
from uplink62676.namespaces import TDS, TEV, TR2, TRT, TT, TUP
from uplink62676.query.client import Query, set_synchronization_point_request
from uplink62676.query.resources import PropertyOperation
from uplink62676.soap import parse_response

_GET_SERVICES = (
    b'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/'
    b'soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><env:Body>'
    b"<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>"
    b"</env:Body></env:Envelope>")
_SOAP = [("content-type", "application/soap+xml; charset=utf-8")]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _until(predicate: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.005)


def _camera_query(index_prefix: str) -> Query:
    return Query(prefix=index_prefix, topics=("MediaProfile",))


@aio
async def test_blocked_pull_is_answered_by_a_change(pki: Pki) -> None:
    """EVT-24, RQ-11, UPL-R21: a long poll waits in the host and a camera going offline
    answers it with a Changed notification; the pull-point address names the uplink's
    ``:authority``, and its path alone routes the pull."""
    async with city(pki, 50) as c:
        cam = c.vss.cameras[3]
        ref = await c.subscribe(_camera_query(cam.device_id))
        assert ref.address.startswith(f"https://{DEVICE}/onvif/events/pullpoint")
        first = await c.pull(ref.address)
        assert {n.operation for n in first.notifications} == {PropertyOperation.INITIALIZED}
        assert len(first.notifications) == 2
        pull = asyncio.ensure_future(c.pull(ref.address))
        await _until(lambda: c.host.waiting == 1)
        started = time.monotonic()
        assert c.host.change(lambda now: c.vss.set_camera_offline(3, True, now)) == 1
        batch = await pull
        assert time.monotonic() - started < 2
        [note] = batch.notifications
        assert note.operation is PropertyOperation.CHANGED
        assert note.data is not None and note.data.offline is True
        assert c.host.waiting == 0


@aio
async def test_empty_answer_at_the_timeout_is_the_live_check(pki: Pki) -> None:
    """RQ-21, EVT-25: with nothing pending the pull comes back empty after its Timeout,
    driven by the host's timer (no request arrives meanwhile)."""
    async with city(pki, 20) as c:
        ref = await c.subscribe(_camera_query(c.vss.cameras[0].device_id))
        await c.pull(ref.address)
        started = time.monotonic()
        batch = await c.pull(ref.address, timeout=0.4)
        elapsed = time.monotonic() - started
        assert batch.notifications == ()
        assert 0.35 <= elapsed < 3


@aio
async def test_stream_reset_withdraws_the_poll(pki: Pki) -> None:
    """EVT-28: the cloud gives up on a blocked pull (RST_STREAM); the host cancels it in the
    service, so the next pull on the same pull point blocks normally and gets the change."""
    async with city(pki, 20) as c:
        ref = await c.subscribe(_camera_query(c.vss.cameras[1].device_id))
        await c.pull(ref.address)
        pull = asyncio.ensure_future(c.pull(ref.address))
        await _until(lambda: c.host.waiting == 1)
        pull.cancel()
        await _until(lambda: c.host.waiting == 0)
        again = asyncio.ensure_future(c.pull(ref.address))
        await _until(lambda: c.host.waiting == 1)
        c.host.change(lambda now: c.vss.set_camera_offline(1, True, now))
        batch = await again
        assert [n.operation for n in batch.notifications] == [PropertyOperation.CHANGED]


@aio
async def test_set_synchronization_point_answers_the_blocked_poll(pki: Pki) -> None:
    """EVT-37: SetSynchronizationPoint completes the poll already blocked on that pull point;
    its answer comes out of take_completed() after the request and reaches the waiting stream."""
    async with city(pki, 20) as c:
        ref = await c.subscribe(_camera_query(c.vss.cameras[2].device_id))
        await c.pull(ref.address)
        pull = asyncio.ensure_future(c.pull(ref.address))
        await _until(lambda: c.host.waiting == 1)
        req = set_synchronization_point_request(ref.address)
        path = ref.address.split(DEVICE, 1)[1]
        r = await c.cloud.request(DEVICE, "POST", path, [("content-type", req.content_type)],
                                  req.body)
        assert r.status == 200
        batch = await asyncio.wait_for(pull, 3)
        assert {n.operation for n in batch.notifications} == {PropertyOperation.INITIALIZED}
        assert len(batch.notifications) == 2


@aio
async def test_simulated_changes_flow_without_requests(pki: Pki) -> None:
    """EVT-24, RQ-11: the host's timer runs the simulation's camera changes, so a subscriber
    to everything receives Changed notifications with no help from the test."""
    async with city(pki, 30, change_rate=40.0) as c:
        ref = await c.subscribe(Query(topics=("VideoSource",)))
        first = await c.pull(ref.address, limit=1000)
        assert len(first.notifications) == 30
        seen: list[PropertyOperation | None] = []
        async with asyncio.timeout(5):
            while PropertyOperation.CHANGED not in seen:
                seen += [n.operation for n in (await c.pull(ref.address, timeout=2)).notifications]


@aio
async def test_get_services_xaddrs_follow_the_authority(pki: Pki) -> None:
    """UPL-59, UPL-R21, DEV-7, DEV-10: GetServices through the uplink answers XAddrs made of the
    request's ``:scheme`` and ``:authority`` for the device, event, media, media2 and uplink
    services; GetDeviceInformation and Media GetStreamUri are answered by the simulation."""
    async with city(pki, 5) as c:
        r = await c.cloud.request(DEVICE, "POST", "/onvif/device_service", _SOAP, _GET_SERVICES)
        assert r.status == 200
        body = parse_response(r.body, status=r.status).body
        services = {s.findtext(f"{{{TDS}}}Namespace"): s.findtext(f"{{{TDS}}}XAddr")
                    for s in body.iter(f"{{{TDS}}}Service")}
        assert services == {TDS: f"https://{DEVICE}/onvif/device_service",
                            TEV: f"https://{DEVICE}/onvif/events_service",
                            TRT: f"https://{DEVICE}/onvif/media_service",
                            TR2: f"https://{DEVICE}/onvif/media2_service",
                            TUP: f"https://{DEVICE}/onvif/uplink_service"}
        other = _GET_SERVICES.replace(b"GetServices>", b"GetDeviceInformation>").replace(
            b"<tds:IncludeCapability>false</tds:IncludeCapability>", b"")
        r = await c.cloud.request(DEVICE, "POST", "/onvif/device_service", _SOAP, other)
        info = parse_response(r.body, status=r.status).body
        assert info.findtext(f"{{{TDS}}}Model") == "Simulated VSS"
        token = c.vss.cameras[2].tokens()[1]
        stream = (b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
                  b'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
                  b'xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body><trt:GetStreamUri>'
                  b"<trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport>"
                  b"<tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>"
                  b"<trt:ProfileToken>" + token.encode() + b"</trt:ProfileToken>"
                  b"</trt:GetStreamUri></env:Body></env:Envelope>")
        r = await c.cloud.request(DEVICE, "POST", "/onvif/media_service", _SOAP, stream)
        uri = parse_response(r.body, status=r.status).body.findtext(f".//{{{TT}}}Uri")
        assert uri == f"rtsp://{DEVICE}:554/media/{c.vss.cameras[2].device_id}/main"
        other = _GET_SERVICES.replace(b"GetServices>", b"SystemReboot>").replace(
            b"<tds:IncludeCapability>false</tds:IncludeCapability>", b"")
        r = await c.cloud.request(DEVICE, "POST", "/onvif/device_service", _SOAP, other)
        with pytest.raises(SoapFault) as exc:
            parse_response(r.body, status=r.status)
        assert "ActionNotSupported" in str(exc.value.subcodes)


@aio
async def test_uplink_user_level_reaches_the_access_check(pki: Pki) -> None:
    """UPL-41, CFG-33: an uplink configured with UserLevel Anonymous cannot subscribe
    (READ_MEDIA), whatever the request says; User can."""
    async with city(pki, 5, user_level="Anonymous") as c:
        with pytest.raises(SoapFault) as info:
            await c.subscribe(Query())
        assert "NotAuthorized" in str(info.value.subcodes)


@aio
async def test_other_paths_go_to_the_fallback_or_404(pki: Pki) -> None:
    """UPL-4: the host serves only its services; everything else reaches the fallback handler
    (e.g. the --forward server), or gets 404 without one."""
    async def fallback(req: TunneledRequest) -> Response:
        return Response(200, (), f"fallback {req.path}".encode())

    async with city(pki, 5, fallback=fallback, device_service=False) as c:
        r = await c.cloud.request(DEVICE, "POST", "/onvif/device_service", _SOAP, _GET_SERVICES)
        assert (r.status, r.body) == (200, b"fallback /onvif/device_service")
    async with city(pki, 5) as c:
        r = await c.cloud.request(DEVICE, "GET", "/onvif/nothing_here", [], None)
        assert r.status == 404
        # A SOAP endpoint asked with GET says what it wants instead of "no service".
        r = await c.cloud.request(DEVICE, "GET", "/onvif/media_service", [], None)
        assert r.status == 405 and r.header("allow") == "POST"


@aio
async def test_close_answers_waiting_polls(pki: Pki) -> None:
    """EVT-28: stopping the host answers the blocked polls (503) instead of leaving them open."""
    async with city(pki, 5) as c:
        ref = await c.subscribe(Query())
        await c.pull(ref.address)
        req_task = asyncio.ensure_future(c.cloud.request(
            DEVICE, "POST", ref.address.split(DEVICE, 1)[1], _SOAP,
            b'<?xml version="1.0"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"'
            b' xmlns:tev="http://www.onvif.org/ver10/events/wsdl"><env:Body><tev:PullMessages>'
            b"<tev:Timeout>PT30S</tev:Timeout><tev:MessageLimit>10</tev:MessageLimit>"
            b"</tev:PullMessages></env:Body></env:Envelope>"))
        await _until(lambda: c.host.waiting == 1)
        await c.host.close()
        r = await asyncio.wait_for(req_task, 3)
        assert r.status == 503 and c.host.waiting == 0



@pytest.mark.parametrize(("argv", "message"), [
    (["device", "--remote", "https://c/u"], "--forward URL or --simulate N"),
    (["device", "--remote", "https://c/u", "--simulate", "0"], "--simulate needs 1..100000"),
    (["device", "--remote", "https://c/u", "--simulate", "5", "--change-rate", "-1"],
     "--change-rate must be >= 0"),
])
def test_device_simulate_usage_errors(argv: list[str], message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The device command needs something to serve: --forward, --simulate N (N >= 1), or both."""
    from uplink62676.app.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
