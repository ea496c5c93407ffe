"""mTLS end to end in a cluster: device identities pass through HAProxy (TCP mode, TLS
untouched) to the node that terminates them, and the nodes talk mTLS among themselves."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from _adapters_util import make_pki
from _cluster_util import CMD, Cluster, http_get, needs_servers
from uplink62676.io.certs import CertificateAuthority

pytestmark = [needs_servers]


def test_device_certificates_reach_the_nodes_through_haproxy(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    cert, key = pki.cloud
    nodes_ca = CertificateAuthority("cluster nodes CA")  # a node is server and client
    node_cert, node_key = nodes_ca.issue("node", ip_addresses=["127.0.0.1"], server=True,
                                         client=True).write(tmp_path, "node")
    tls = ["--cert", cert, "--key", key, "--client-ca", pki.ca, "--node-cert", node_cert,
           "--node-key", node_key, "--node-ca", nodes_ca.write_ca(tmp_path / "nodes-ca.pem")]
    cluster = Cluster(tmp_path, n=2, refresh=1.0, extra=tls)
    devices: list[subprocess.Popen[bytes]] = []
    try:
        cluster.start()
        for name in ("cam-1", "cam-2"):
            dcert, dkey = pki.devices[name]
            devices.append(subprocess.Popen(
                [*CMD, "device", "--remote",
                 f"https://localhost:{cluster.uplink_port}/uplink", "--ca", pki.ca,
                 "--cert", dcert, "--key", dkey, "--simulate", "1"],
                stdout=subprocess.DEVNULL, stderr=(tmp_path / f"{name}.log").open("ab")))
        listing = cluster.wait_listed(2, timeout=30)
        assert {d["id"] for d in listing} == {"cam-1", "cam-2"}
        assert all(d["auth"] != "anonymous" for d in listing), listing  # the certificate's CN
        for node in cluster.nodes:
            for name in ("cam-1", "cam-2"):
                status, _, body = asyncio.run(http_get(node.expose,
                                                       f"/devices/{name}/onvif/device_service"))
                assert status not in (403, 404, 502, 503), (node.name, name, status, body)
        # the internal port wants a node certificate: a plain client gets nowhere
        with pytest.raises((OSError, TimeoutError)):
            asyncio.run(http_get(cluster.nodes[0].internal, "/devices", timeout=3))
    finally:
        for proc in devices:
            proc.terminate()
            proc.wait(10)
        cluster.stop()
