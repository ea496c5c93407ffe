"""Firmware team: a device on the threaded adapter (no asyncio in the device code).

It serves a request handler and the uplink configuration service, whose
configurations live in a ConfigStore file.  A cloud runs in a background
thread of the same script, only to talk to the device.  No arguments.
"""

import asyncio
import shutil
import tempfile
import threading

from uplink62676.aio import CloudServer
from uplink62676.config import Capabilities, UplinkConfiguration
from uplink62676.io.certs import CertificateAuthority
from uplink62676.io.store import ConfigStore
from uplink62676.io.tls import cloud_tls_context, device_tls_context
from uplink62676.services.uplink import UplinkService
from uplink62676.services.uplink_client import UplinkServiceClient
from uplink62676.status import Status
from uplink62676.threaded import DeviceAgent, Response, TunneledRequest, UplinkSpec

DEVICE_ID = "32010001071321008015"
tmp = tempfile.mkdtemp(prefix="firmware-example-")
ca = CertificateAuthority()
ca_file = ca.write_ca(f"{tmp}/ca.pem")
cloud_cert, cloud_key = ca.issue_cloud("localhost").write(tmp, "cloud")
dev_cert, dev_key = ca.issue_device(DEVICE_ID).write(tmp, "device")

# --- the cloud, on an event loop in a thread of its own (in real life: elsewhere) ---
loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()
in_cloud = lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result(15)  # noqa: E731
cloud = CloudServer(ssl_context=cloud_tls_context(cert_file=cloud_cert, key_file=cloud_key,
                                                  client_ca_file=ca_file))
in_cloud(cloud.start("127.0.0.1", 0))
remote = f"https://localhost:{cloud.port}/uplink"

# --- the device: TLS identity, stored configuration, service, handler -------------
tls = device_tls_context(ca_file=ca_file, cert_file=dev_cert, key_file=dev_key)
store, agent = ConfigStore(f"{tmp}/uplinks.xml"), None


def specs(configurations):  # stored configurations -> what the agent runs
    return [UplinkSpec(c.remote_address, tls, user_level=c.user_level) for c in configurations]


def on_change(change):  # persist first (CFG-R9), then apply just after the answer leaves
    store.on_change(change)
    if agent is not None:
        threading.Timer(0.2, agent.set_uplinks, [specs(change.configurations)]).start()


def status(address):  # the live Status/Error that GetUplinks reports
    return agent.status(address) if agent else (Status.OFFLINE, None)


service = UplinkService(Capabilities(max_uplinks=2, protocols=("https",),
                                     authorization_modes=("mTLS",)),
                        configurations=store.load(),
                        status_provider=status, on_change=on_change)
if not service.configurations:  # first boot: the factory default uplink, stored
    service.set_uplink(UplinkConfiguration(remote, ("Operator",), certificate_id="device"))


def handler(request: TunneledRequest) -> Response:  # blocking, one thread per request
    body = request.body()
    if request.path == "/onvif/uplink_service":
        answer = service.handle(body, content_type=request.header("content-type"),
                                user_level=request.user_level)
        return Response(answer.status, answer.headers, answer.body)
    text = f"{request.method} {request.path} as {' '.join(request.user_level)}: hello"
    return Response(200, [("content-type", "text/plain")], text.encode())


agent = DeviceAgent(handler, identity=DEVICE_ID, uplinks=specs(service.configurations))
with agent:  # starts one I/O thread per uplink; stops them on exit
    agent.wait_status(remote, Status.CONNECTED, timeout=10)
    in_cloud(cloud.wait_for_device(DEVICE_ID))
    print("device connected:", cloud.devices())
    answer = in_cloud(cloud.request(DEVICE_ID, "GET", "/hello"))
    print("GET /hello ->", answer.status, answer.body.decode())
    client, call = UplinkServiceClient(), UplinkServiceClient().get_uplinks()
    answer = in_cloud(cloud.request(DEVICE_ID, "POST", client.path,
                                    [("content-type", call.content_type)], call.body))
    for config in client.read_uplinks(answer.body, answer.status):
        print("GetUplinks ->", config.remote_address, config.user_level, config.status)
        assert config.status is Status.CONNECTED
in_cloud(cloud.close())
shutil.rmtree(tmp)
