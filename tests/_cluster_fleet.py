"""Many simulated devices in one process: one DeviceAgent, one uplink per device.

``python tests/_cluster_fleet.py URL-BASE COUNT``: device ``dev-NNN`` keeps an
uplink to ``URL-BASE/dev-NNN`` (plaintext; the cloud names an anonymous device by
the last path segment).  Each answers ``GET /who`` with its name and ``GET
/slow`` after two seconds.  The reconnect schedule is the real one shrunk to
0.2..1 s (cap 2 s), so fail-over tests stay short.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from uplink62676.aio._common import Response, UplinkSpec
from uplink62676.aio.device import DeviceAgent, TunneledRequest
from uplink62676.liveness import ReconnectSchedule


def schedule(identity: str) -> ReconnectSchedule:
    return ReconnectSchedule(identity=identity, min_start=0.2, max_start=1.0, cap=2.0)


async def handler(req: TunneledRequest) -> Response:
    name = req.remote_address.rsplit("/", 1)[-1]
    if req.path.startswith("/slow"):
        await asyncio.sleep(2.0)
    body = await req.body()
    return Response(200, (("x-device", name), ("x-authority", req.authority or "")),
                    name.encode() + b" " + body)


async def main(base: str, count: int) -> None:
    specs = [UplinkSpec(f"{base}/dev-{i:03d}", insecure_plaintext=True) for i in range(count)]
    agent = DeviceAgent(handler, identity="fleet", uplinks=specs, schedule_factory=schedule)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await agent.start()
    print("fleet started", flush=True)
    await stop.wait()
    await agent.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
