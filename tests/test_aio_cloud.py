"""asyncio cloud server: authentication, identity, registry, requests (UPL-13..15, 30, 33..39, R18)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator

import pytest

from _adapters_util import Pki, aio, fast_schedule, make_pki
from uplink62676 import InvalidTokenError, TransportError
from uplink62676.aio import CloudServer, DeviceAgent, Response, TunneledRequest, UplinkSpec
from uplink62676.status import Status


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def echo(req: TunneledRequest) -> Response:
    body = await req.body()
    return Response(200, (("x-path", req.path),), body[::-1])


async def _raw_upgrade(port: int, ctx: ssl.SSLContext | None, extra: bytes = b"",
                       target: bytes = b"/uplink") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                   server_hostname="localhost" if ctx else None)
    writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
                 b"Upgrade: h2c-reverse\r\n" + extra + b"\r\n")
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep and (head.startswith(b"HTTP/1.1 101") and len(rest) >= 39):
            break
        chunk = await asyncio.wait_for(reader.read(4096), 5)
        if not chunk:
            break
        data += chunk
    writer.close()
    return data


@aio
async def test_101_then_client_preface(pki: Pki) -> None:
    """UPL-12, UPL-13, UPL-14, UPL-15: 101 with Upgrade: h2c-reverse, then at once the client preface."""
    cloud = CloudServer(insecure_plaintext=True)
    await cloud.start()
    data = await _raw_upgrade(cloud.port, None)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"upgrade: h2c-reverse" in head.lower() and b"connection: upgrade" in head.lower()
    assert rest.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x06\x04\x00")
    await cloud.close()


@aio
async def test_bad_token_is_401_with_bearer_challenge_and_no_101(pki: Pki) -> None:
    """UPL-39, UPL-R17, UPL-R18: the token is validated before any 101; failure -> 401 Bearer."""
    checked: list[str] = []

    async def validate(token: str) -> str | None:
        checked.append(token)
        if token != "t0ken":
            raise InvalidTokenError("expired")
        return "cam-7"

    cloud = CloudServer(insecure_plaintext=True, token_validator=validate)
    await cloud.start()
    bad = await _raw_upgrade(cloud.port, None, b"Authorization: Bearer nope\r\n")
    assert bad.startswith(b"HTTP/1.1 401 ")
    assert b'www-authenticate: Bearer error="invalid_token"' in bad.lower().replace(
        b"bearer", b"Bearer")
    assert b"PRI *" not in bad
    none = await _raw_upgrade(cloud.port, None)
    assert none.startswith(b"HTTP/1.1 401 ") and b'Bearer realm="uplink"' in none
    ok = await _raw_upgrade(cloud.port, None, target=b"/uplink?access_token=t0ken")
    assert ok.startswith(b"HTTP/1.1 101 ")
    assert checked == ["nope", "t0ken"]
    await cloud.close()


@aio
async def test_device_identity_sources(pki: Pki) -> None:
    """UPL-33, UPL-34: id from the certificate CN; else token identity; else path; else peer."""
    cloud = CloudServer(ssl_context=pki.cloud_ctx(require=False),
                        token_validator=lambda t: "from-token" if t == "tk" else None,
                        allow_anonymous=True)
    await cloud.start()
    p = cloud.port
    agent = DeviceAgent(echo, identity="x", schedule_factory=fast_schedule, uplinks=[
        UplinkSpec(f"https://localhost:{p}/uplink/ignored-a", pki.device_ctx("cam-2")),
        UplinkSpec(f"https://localhost:{p}/uplink/ignored-b", pki.device_ctx(None),
                   access_token="tk"),
        UplinkSpec(f"https://localhost:{p}/uplink/by-path/", pki.device_ctx(None)),
        UplinkSpec(f"https://localhost:{p}/", pki.device_ctx(None)),
    ])
    async with agent:
        for name in ("cam-2", "from-token", "by-path"):
            await cloud.wait_for_device(name)
        for _ in range(100):
            if len(cloud.devices()) == 4:
                break
            await asyncio.sleep(0.02)
        infos = {d.device_id: d for d in cloud.devices()}
        assert infos["cam-2"].auth == "mTLS"
        assert infos["from-token"].auth == "AccessToken"
        assert infos["by-path"].auth == "none"
        peers = [d for d in infos if d.startswith("127.0.0.1:")]
        assert len(peers) == 1 and infos[peers[0]].peer == peers[0]
        assert infos["cam-2"].to_json()["protocol"] == "h2c-reverse"
    await cloud.close()


@aio
async def test_identity_hook_and_mtls_required(pki: Pki) -> None:
    """UPL-33: with a client CA and no validator, a device without a certificate gets no uplink;
    an identity hook can rename devices."""
    cloud = CloudServer(ssl_context=pki.cloud_ctx(),
                        identity_hook=lambda ctx: f"site1/{ctx.client_cert_cn}")
    await cloud.start()
    good = f"https://localhost:{cloud.port}/a"
    agent = DeviceAgent(echo, identity="x", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(good, pki.device_ctx("cam-3"))])
    async with agent:
        await cloud.wait_for_device("site1/cam-3")
    await cloud.close()


@aio
async def test_same_device_twice_replaces_older(pki: Pki) -> None:
    """A device that reconnects while its old uplink lingers replaces it (no duplicate entries)."""
    cloud = CloudServer(ssl_context=pki.cloud_ctx())
    await cloud.start()
    a1 = DeviceAgent(echo, identity="1", schedule_factory=fast_schedule,
                     uplinks=[UplinkSpec(f"https://localhost:{cloud.port}/a", pki.device_ctx("cam-1"))])
    await a1.start()
    await cloud.wait_for_device("cam-1")
    first_peer = cloud.device("cam-1").peer  # type: ignore[union-attr]
    a2 = DeviceAgent(echo, identity="1", schedule_factory=fast_schedule,
                     uplinks=[UplinkSpec(f"https://localhost:{cloud.port}/b", pki.device_ctx("cam-1"))])
    await a2.start()
    for _ in range(100):
        info = cloud.device("cam-1")
        if info is not None and info.peer != first_peer:
            break
        await asyncio.sleep(0.02)
    assert len(cloud.devices()) == 1 and cloud.device("cam-1").peer != first_peer  # type: ignore[union-attr]
    await a1.stop()
    await a2.stop()
    await cloud.close()


@aio
async def test_requests_stream_both_ways_and_unknown_device(pki: Pki) -> None:
    """UPL-4, UPL-19: streamed request body and streamed response through the uplink."""

    async def handler(req: TunneledRequest) -> Response:
        async def back() -> AsyncIterator[bytes]:
            async for chunk in req:
                yield chunk.upper()
        return Response(200, (("content-type", "text/plain"),), back())

    cloud = CloudServer(ssl_context=pki.cloud_ctx())
    await cloud.start()
    agent = DeviceAgent(handler, identity="1", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(f"https://localhost:{cloud.port}/s", pki.device_ctx("cam-1"))])
    async with agent:
        await cloud.wait_for_device("cam-1")

        async def body() -> AsyncIterator[bytes]:
            for i in range(200):
                yield b"chunk-%03d;" % i

        async with await cloud.open_stream("cam-1", "POST", "/upper", body=body()) as stream:
            assert stream.status == 200
            data = await stream.body()
        assert data == b"".join(b"CHUNK-%03d;" % i for i in range(200))
        with pytest.raises(KeyError):
            await cloud.request("nobody", "GET", "/")
    await cloud.close()


@aio
async def test_device_dies_mid_request(pki: Pki) -> None:
    """A device that disappears mid-request fails the request and leaves the registry."""
    started = asyncio.Event()

    async def hang(req: TunneledRequest) -> Response:
        started.set()
        await asyncio.sleep(30)
        return Response(200)

    cloud = CloudServer(ssl_context=pki.cloud_ctx())
    await cloud.start()
    address = f"https://localhost:{cloud.port}/d"
    agent = DeviceAgent(hang, identity="1", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(address, pki.device_ctx("cam-1"))])
    await agent.start()
    await cloud.wait_for_device("cam-1")
    pending = asyncio.create_task(cloud.request("cam-1", "GET", "/hang", body=None))
    await started.wait()
    await agent.stop()
    with pytest.raises(TransportError):
        await pending
    await cloud.wait_for_device("cam-1", present=False)
    assert cloud.devices() == []
    assert agent.status(address) == (Status.OFFLINE, None)
    await cloud.close()


@aio
async def test_cloud_ping(pki: Pki) -> None:
    """UPL-49: a PING is answered with an ACK carrying the same payload (both directions)."""
    cloud = CloudServer(ssl_context=pki.cloud_ctx())
    await cloud.start()
    address = f"https://localhost:{cloud.port}/p"
    agent = DeviceAgent(echo, identity="1", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(address, pki.device_ctx("cam-1"))])
    async with agent:
        await cloud.wait_for_device("cam-1")
        assert 0 <= await cloud.ping("cam-1") < 5
        assert 0 <= await agent.ping(address) < 5
    await cloud.close()


@aio
async def test_sync_and_broken_validators(pki: Pki) -> None:
    """UPL-39: a synchronous validator is asked like an async one; one that breaks (not a
    refusal) is the cloud's fault: 500, no challenge, no 101."""
    def validate(token: str) -> str | None:
        if token == "boom":
            raise RuntimeError("database down")
        if token == "bad":
            raise InvalidTokenError("revoked")
        return "cam-s" if token == "good" else None

    cloud = CloudServer(insecure_plaintext=True, token_validator=validate)
    await cloud.start()
    ok = await _raw_upgrade(cloud.port, None, b"Authorization: Bearer good\r\n")
    assert ok.startswith(b"HTTP/1.1 101 ")
    bad = await _raw_upgrade(cloud.port, None, b"Authorization: Bearer bad\r\n")
    assert bad.startswith(b"HTTP/1.1 401 ") and b"invalid access token: revoked" in bad
    assert b'error="invalid_token"' in bad
    broken = await _raw_upgrade(cloud.port, None, b"Authorization: Bearer boom\r\n")
    assert broken.startswith(b"HTTP/1.1 500 ") and b"www-authenticate" not in broken.lower()
    await cloud.close()


@aio
async def test_async_validator_that_breaks_is_500(pki: Pki) -> None:
    async def validate(token: str) -> str | None:
        await asyncio.sleep(0)
        raise RuntimeError("introspection endpoint down")

    cloud = CloudServer(insecure_plaintext=True, token_validator=validate)
    await cloud.start()
    broken = await _raw_upgrade(cloud.port, None, b"Authorization: Bearer x\r\n")
    assert broken.startswith(b"HTTP/1.1 500 ") and b"token validator failed" in broken
    await cloud.close()


@aio
async def test_cloud_ping_is_resolved_by_the_connection(pki: Pki) -> None:
    """UPL-49: concurrent PINGs each get their own ACK; none is left behind, and a PING
    to a device that goes away fails instead of waiting for its timeout."""
    cloud = CloudServer(ssl_context=pki.cloud_ctx())
    await cloud.start()
    address = f"https://localhost:{cloud.port}/p"
    agent = DeviceAgent(echo, identity="1", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(address, pki.device_ctx("cam-1"))])
    await agent.start()
    await cloud.wait_for_device("cam-1")
    rtts = await asyncio.gather(*(cloud.ping("cam-1") for _ in range(5)))
    assert all(0 <= r < 5 for r in rtts)
    conn = cloud._registry.lookup("cam-1")
    assert conn is not None and not conn.pings
    with pytest.raises(KeyError):
        await cloud.ping("cam-404")
    conn.uplink.ping = lambda now: b"NOANSWER"  # type: ignore[method-assign]  # never ACKed
    pending = asyncio.create_task(cloud.ping("cam-1", timeout=20))
    await asyncio.sleep(0.05)
    await agent.stop()
    with pytest.raises(TransportError):
        await asyncio.wait_for(pending, 5)
    await cloud.close()


@aio
async def test_stream_reserved_for_a_request_that_timed_out_is_passed_on(pki: Pki) -> None:
    """A queued request woken in the same loop turn as its timeout gives its stream back."""
    cloud = CloudServer(ssl_context=pki.cloud_ctx())
    await cloud.start()
    agent = DeviceAgent(echo, identity="1", schedule_factory=fast_schedule, uplinks=[
        UplinkSpec(f"https://localhost:{cloud.port}/q", pki.device_ctx("cam-1"))])
    async with agent:
        await cloud.wait_for_device("cam-1")
        conn = cloud._registry.lookup("cam-1")
        assert conn is not None
        conn.reserved = conn.uplink.stream_slots  # every stream handed out: requests queue
        loop = asyncio.get_running_loop()
        queued = asyncio.create_task(cloud.request("cam-1", "GET", "/x", body=None,
                                                   timeout=0.05))
        await asyncio.sleep(0)
        assert len(conn.slot_waiters) == 1

        def free_all() -> None:
            conn.reserved = 0
            conn.wake_slot_waiters()

        loop.call_at(loop.time() + 0.04, free_all)
        time.sleep(0.1)  # block the loop: the wake-up and the timeout fall into one turn
        with pytest.raises(TransportError, match="no free stream"):
            await queued
        assert conn.reserved == 0
        assert (await cloud.request("cam-1", "POST", "/y", body=b"ab")).body == b"ba"
    await cloud.close()
