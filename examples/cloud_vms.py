"""Cloud / VMS builder: an asyncio cloud that accepts uplinks with mTLS.

It lists the connected devices, sends one SOAP request (GetServices) to each
and runs a resource query (media profiles) on one of them, driving the
sans-I/O QueryClient over CloudServer.request.  The two devices are simulated
VSS recorders in the same script.  No arguments.
"""

import asyncio
import tempfile
import time
from urllib.parse import urlsplit

from uplink62676.aio import CloudServer, DeviceAgent, UplinkSpec, VssHost
from uplink62676.app.simulate import SimulatedVss
from uplink62676.io.certs import CertificateAuthority
from uplink62676.io.tls import cloud_tls_context, device_tls_context
from uplink62676.query.client import Query, QueryClient

DEVICES = ["32010001071321008015", "32010001071321008016"]
GET_SERVICES = (b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds='
                b'"http://www.onvif.org/ver10/device/wsdl"><env:Body><tds:GetServices>'
                b'<tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>'
                b'</env:Body></env:Envelope>')
SOAP = [("content-type", "application/soap+xml; charset=utf-8")]


async def query(cloud: CloudServer, device_id: str) -> dict:
    """Subscribe and pull the initial set: the resources the query matches."""
    client = QueryClient(f"https://{device_id}/onvif/events_service",
                         Query(topics=("MediaProfile",)), timeout=0.0)
    loop = asyncio.get_running_loop()
    while (out := client.next_request(loop.time())) is not None:
        answer = await cloud.request(device_id, "POST", urlsplit(out.url).path, SOAP,
                                     out.request.body)
        client.receive(answer.status, answer.body, loop.time())
        batch = client.last_batch
        if batch is not None and len(batch.notifications) < client.message_limit:
            return dict(client.mirror.resources)  # the initial set is complete
    raise RuntimeError("query ended early")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ca = CertificateAuthority()
        ca_file = ca.write_ca(f"{tmp}/ca.pem")
        cert, key = ca.issue_cloud("localhost").write(tmp, "cloud")
        cloud = CloudServer(ssl_context=cloud_tls_context(
            cert_file=cert, key_file=key, client_ca_file=ca_file))  # client certs required
        await cloud.start("127.0.0.1", 0)
        agents = []
        for n, device_id in enumerate(DEVICES):  # the simulated devices
            dcert, dkey = ca.issue_device(device_id).write(tmp, device_id)
            tls = device_tls_context(ca_file=ca_file, cert_file=dcert, key_file=dkey)
            host = VssHost(SimulatedVss(20, seed=n, now=time.time(), change_rate=0))
            host.start()
            agents.append(DeviceAgent(host, identity=device_id, uplinks=[
                UplinkSpec(f"https://localhost:{cloud.port}/uplink", tls, user_level="Operator")]))
            await agents[-1].start()
        async with cloud:
            for device_id in DEVICES:
                await cloud.wait_for_device(device_id)
            for info in cloud.devices():  # identity = the certificate's CN (UPL-34)
                answer = await cloud.request(info.device_id, "POST", "/onvif/device_service",
                                             SOAP, GET_SERVICES)
                print(f"{info.device_id} ({info.auth} from {info.peer}): GetServices ->",
                      answer.status, f"{answer.body.count(b'<tds:Service>')} services")
                assert answer.status == 200
            found = await query(cloud, DEVICES[0])
            print(f"resource query on {DEVICES[0]}: {len(found)} media profiles, e.g.",
                  sorted(found)[:3])
            assert found
            for agent in agents:
                await agent.stop()


asyncio.run(main())
