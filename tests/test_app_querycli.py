"""``uplink62676 query`` against a simulated VSS of 1000 cameras behind a real uplink
(loopback TLS, the cloud's expose port), in process and as real CLI subprocesses."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from _adapters_util import Pki, aio, free_port, make_pki
from _city_util import DEVICE, City, city
from uplink62676.aio.query import QueryRunner
from uplink62676.app.cli import _parser, main
from uplink62676.app.querycli import query_command
from uplink62676.app.simulate import CITY_CENTRE
from uplink62676.query.client import Query
from uplink62676.query.geodesy import geodesic_distance

_KEYS = {"token", "kind", "name", "lat", "lon", "distance_m", "scopes", "offline", "operation"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _query(c: City, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = _parser().parse_args(["query", c.url, *argv])
    code = await query_command(args, out, err)
    return code, out.getvalue(), err.getvalue()


def _within(c: City, near: tuple[float, float], radius: float) -> dict[int, float]:
    return {cam.index: d for cam in c.vss.cameras
            if (d := geodesic_distance(near[0], near[1], cam.lat, cam.lon)) <= radius}


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@aio
async def test_table_lists_the_profiles_near_a_point(pki: Pki) -> None:
    """RQ-12, RQ-R7, RQ-9: the table holds exactly the media profiles whose camera lies
    within --radius of --near (geodesic), nearest first, with distances and online state."""
    async with city(pki, 1000) as c:
        near, radius = CITY_CENTRE, 400.0
        code, out, err = await _query(c, "--topic", "MediaProfile", "--near",
                                      f"{near[0]},{near[1]}", "--radius", str(radius))
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].split() == ["TOKEN", "NAME", "DIST_M", "LAT", "LON", "OFFLINE"]
        expected = _within(c, near, radius)
        assert expected, "the seed puts cameras near the centre"
        rows = [line.split() for line in lines[1:-1]]
        assert lines[-1] == f"{2 * len(expected)} resource(s)"
        assert {r[0] for r in rows} == {t for i in expected
                                        for t in c.vss.cameras[i].tokens()[1:]}
        dists = [float(r[-4]) for r in rows]
        assert dists == sorted(dists) and max(dists) <= radius
        assert {r[-1] for r in rows} == {"no"}


@aio
async def test_json_objects_carry_every_field(pki: Pki) -> None:
    """RQ-9, RQ-15, RQ-R7: --json prints one object per resource with token, name, lat, lon,
    distance_m, scopes, offline and operation; a scope filter narrows to one district."""
    async with city(pki, 1000) as c:
        near = CITY_CENTRE
        code, out, err = await _query(
            c, "--json", "--topic", "VideoSource", "--near", f"{near[0]},{near[1]}",
            "--radius", "1500", "--scope", "onvif://www.onvif.org/location/district/gulou")
        assert code == 0, err
        objs = [json.loads(line) for line in out.splitlines()]
        expected = {i for i in _within(c, near, 1500) if c.vss.cameras[i].district == "gulou"}
        assert {o["token"] for o in objs} == {c.vss.cameras[i].tokens()[0] for i in expected}
        for o in objs:
            assert o.keys() >= _KEYS
            assert o["operation"] == "Initialized" and o["kind"] == "VideoSource"
            assert o["offline"] is False and o["distance_m"] <= 1500
            assert "onvif://www.onvif.org/location/district/gulou" in o["scopes"]
            assert abs(geodesic_distance(near[0], near[1], o["lat"], o["lon"])
                       - o["distance_m"]) < 0.1


@aio
async def test_prefix_filter_gives_one_cameras_resources(pki: Pki) -> None:
    """RQ-14: --prefix <device ID> returns that camera's three resources, nothing else."""
    async with city(pki, 1000) as c:
        cam = c.vss.cameras[123]
        code, out, _ = await _query(c, "--json", "--prefix", cam.device_id)
        assert code == 0
        assert sorted(json.loads(line)["token"] for line in out.splitlines()) == sorted(
            cam.tokens())


@aio
async def test_follow_prints_changes_and_live_checks(pki: Pki) -> None:
    """RQ-21, RQ-11, RQ-10, EVT-25: --follow prints a live-check line for each empty pull
    and the camera going offline as Changed (then its removal as Deleted), as they happen."""
    async with city(pki, 1000) as c:
        cam = c.vss.cameras[42]
        out, err = io.StringIO(), io.StringIO()
        args = _parser().parse_args(["query", c.url, "--follow", "--timeout", "0.3", "--for",
                                     "20", "--prefix", cam.device_id, "--topic", "MediaProfile"])
        task = asyncio.ensure_future(query_command(args, out, err))
        await _until(lambda: "live check" in out.getvalue())
        assert "server alive (RQ-21)" in out.getvalue()
        c.host.change(lambda now: c.vss.set_camera_offline(42, True, now))
        await _until(lambda: out.getvalue().count("offline\n") == 2)
        c.host.change(lambda now: c.vss.remove_camera(42, now))
        await _until(lambda: out.getvalue().count("Deleted") == 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        changed = [line for line in out.getvalue().splitlines() if line.startswith("Changed")]
        assert {line.split()[1] for line in changed} == set(cam.tokens()[1:])
        assert all(line.endswith("offline") for line in changed)


@aio
async def test_follow_json_reports_live_checks_and_changes(pki: Pki) -> None:
    """RQ-21, RQ-11: with --json the live check and the change are JSON objects too."""
    async with city(pki, 1000) as c:
        cam = c.vss.cameras[7]
        out = io.StringIO()
        args = _parser().parse_args(["query", c.url, "--follow", "--json", "--timeout", "0.3",
                                     "--for", "1.5", "--prefix", cam.device_id])
        task = asyncio.ensure_future(query_command(args, out, io.StringIO()))
        await _until(lambda: "live_check" in out.getvalue())
        c.host.change(lambda now: c.vss.set_camera_offline(7, True, now))
        assert await task == 0  # --for ends it
        objs = [json.loads(line) for line in out.getvalue().splitlines()]
        assert any(o.get("live_check") is True for o in objs)
        changed = [o for o in objs if o.get("operation") == "Changed"]
        assert {o["token"] for o in changed} == set(cam.tokens())
        assert all(o["offline"] is True and o.keys() >= _KEYS for o in changed)


@aio
async def test_follow_resubscribes_after_the_device_comes_back(pki: Pki) -> None:
    """RQ-R13: when the path to the server breaks (the device's uplink goes away) the client
    says so, re-subscribes once it is back and gets a fresh Initialized set."""
    async with city(pki, 200) as c:
        cam = c.vss.cameras[5]
        out = io.StringIO()
        args = _parser().parse_args(["query", c.url, "--follow", "--timeout", "0.3", "--for",
                                     "20", "--prefix", cam.device_id])
        task = asyncio.ensure_future(query_command(args, out, io.StringIO()))
        await _until(lambda: "live check" in out.getvalue())
        await c.agent.stop()
        await _until(lambda: "lost: HTTP 404" in out.getvalue())
        await c.agent.start()
        await _until(lambda: out.getvalue().count("\nInitialized") == 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert "re-subscribing (re-subscription #1, RQ-R13)" in out.getvalue()


def test_pull_point_addresses_are_rebased_on_the_front_door() -> None:
    """UPL-R21: of a pull-point address the device made from the uplink's :authority only
    path and query are used, under the same /devices/<id> prefix of the same origin."""
    runner = QueryRunner("http://127.0.0.1:8080/devices/abc/onvif/events_service", Query())
    assert runner.target("https://abc/onvif/events/pullpoint/x1") == \
        "/devices/abc/onvif/events/pullpoint/x1"
    assert runner.target("https://abc/onvif/events/pullpoint?id=7") == \
        "/devices/abc/onvif/events/pullpoint?id=7"
    assert runner.target("http://127.0.0.1:8080/devices/abc/pp/1") == "/devices/abc/pp/1"
    direct = QueryRunner("http://cam.local/onvif/events_service", Query())
    assert direct.target("http://cam.local/onvif/events/pullpoint/1") == \
        "/onvif/events/pullpoint/1"


@aio
async def test_failures_exit_1_with_a_message(pki: Pki) -> None:
    """RQ-20: an unknown device (front door 404) and an unreachable service fail clearly."""
    async with city(pki, 5) as c:
        bad = c.url.replace(f"/devices/{DEVICE}/", "/devices/nobody/")
        err = io.StringIO()
        code = await query_command(_parser().parse_args(["query", bad]), io.StringIO(), err)
        assert code == 1 and "HTTP 404" in err.getvalue() and "nobody" in err.getvalue()
    err = io.StringIO()
    args = _parser().parse_args(["query", f"http://127.0.0.1:{free_port()}/x"])
    assert await query_command(args, io.StringIO(), err) == 1
    assert "cannot connect" in err.getvalue()


@pytest.mark.parametrize("argv", [
    ["query"],
    ["query", "http://h/x", "--near", "32,118"],
    ["query", "http://h/x", "--radius", "10"],
    ["query", "http://h/x", "--near", "north", "--radius", "5"],
    ["query", "http://h/x", "--for", "3"],
    ["query", "http://h/x", "--follow", "--timeout", "90"],
    ["query", "http://h/x", "--radius", "-1", "--near", "1,2"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Usage errors exit 2 with the reason (near and radius go together, RQ-R7)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    """The query command documents its options (--help exits 0)."""
    with pytest.raises(SystemExit) as info:
        main(["query", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--topic", "--near", "--radius", "--prefix", "--scope", "--select",
                   "--follow", "--json", "--timeout"):
        assert option in text


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "uplink62676", *argv]


def _wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"port {port} never opened")


def test_real_processes_cloud_device_simulate_and_query(tmp_path: Path) -> None:
    """UPL-2, UPL-R21, RQ-12, RQ-21, RQ-11: `uplink62676 cloud` + `uplink62676 device
    --simulate 1000` over mTLS + `uplink62676 query` through the expose port, as subprocesses:
    a table, --json, and --follow seeing live checks and the simulation's changes."""
    pki = make_pki(tmp_path)
    dev_cert, dev_key = pki.devices["cam-1"]
    listen, expose = free_port(), free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cloud = subprocess.Popen(_cli("cloud", "--expose-open", "--listen", f"127.0.0.1:{listen}", "--expose",
                                  f"127.0.0.1:{expose}", "--cert", pki.cloud[0], "--key",
                                  pki.cloud[1], "--client-ca", pki.ca),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    device = None
    try:
        _wait_for_port(expose, cloud)
        device = subprocess.Popen(_cli("device", "--remote", f"https://localhost:{listen}/up",
                                       "--cert", dev_cert, "--key", dev_key,
                                       "--ca", pki.ca,
                                       "--simulate", "1000", "--seed", "3", "--change-rate", "4"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)
        url = f"http://127.0.0.1:{expose}/devices/cam-1/onvif/events_service"
        deadline = time.monotonic() + 10
        while True:
            r = subprocess.run(_cli("query", url, "--topic", "MediaProfile", "--near",
                                    f"{CITY_CENTRE[0]},{CITY_CENTRE[1]}", "--radius", "500"),
                               capture_output=True, text=True, timeout=20, check=False)
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the device may still be connecting
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("TOKEN") and r.stdout.rstrip().endswith("resource(s)")
        assert ":prof_1" in r.stdout and ":prof_2" in r.stdout

        r = subprocess.run(_cli("query", url, "--json", "--topic", "VideoSource"),
                           capture_output=True, text=True, timeout=20, check=False)
        assert r.returncode == 0, r.stderr
        objs = [json.loads(line) for line in r.stdout.splitlines()]
        assert len(objs) == 1000 and all(o["token"].endswith(":vs_1") for o in objs)

        r = subprocess.run(_cli("query", url, "--follow", "--timeout", "0.1", "--for", "2.5",
                                "--topic", "VideoSource", "--select", "/Offline"),
                           capture_output=True, text=True, timeout=20, check=False)
        assert r.returncode == 0, r.stderr
        assert "live check" in r.stdout
        assert any(line.startswith("Changed") for line in r.stdout.splitlines())
    finally:
        for proc in (device, cloud):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    assert cloud.returncode == 0


@aio
async def test_http_client_replaces_a_connection_closed_while_idle() -> None:
    """RQ-R13 (transport, not server death): a keep-alive connection the server dropped while
    idle is replaced once, silently; a server that answers nothing at all is an error."""
    import h11

    from uplink62676.aio.query import HttpClient
    from uplink62676.errors import TransportError

    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        conn = h11.Connection(h11.SERVER)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.EndOfMessage):
                break
        payload = f"answer {connections}".encode()
        writer.write(conn.send(h11.Response(status_code=200, headers=[
            ("content-length", str(len(payload)))])) or b"")
        writer.write((conn.send(h11.Data(data=payload)) or b"")
                     + (conn.send(h11.EndOfMessage()) or b""))
        await writer.drain()
        writer.close()  # keep-alive promised, connection dropped anyway

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = HttpClient(f"http://127.0.0.1:{port}")
    try:
        assert await client.post("/a", b"x", "text/plain") == (200, b"answer 1")
        await asyncio.sleep(0.05)
        assert await client.post("/b", b"y", "text/plain") == (200, b"answer 2")
    finally:
        await client.close()
        server.close()
        await server.wait_closed()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    client = HttpClient(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        with pytest.raises(TransportError):
            await client.post("/a", b"x", "text/plain")
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
