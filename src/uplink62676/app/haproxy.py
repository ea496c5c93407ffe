"""An HAProxy (2.6+) configuration for a cluster of cloud nodes (docs/cluster.rst).

Every port is balanced in TCP mode: the uplink port passes TLS through untouched,
so each device's certificate (mTLS identity) reaches the node that terminates it;
``leastconn`` spreads the long-lived uplinks evenly, and a node whose uplink
listener stops answering (dead, or draining after SIGTERM) is taken out by the
health check while ``option redispatch`` sends a refused connection to another
node.  The front door (h2c / HTTP/1.1 / TLS) and the RTSP gateway are balanced to
any node: every node reaches every device.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["haproxy_config"]

Address = tuple[str, int]


def _backend(name: str, servers: Sequence[tuple[str, Address]], check: str) -> list[str]:
    lines = [f"backend {name}", "    balance leastconn",
             f"    default-server {check}"]
    lines += [f"    server {node} {host}:{port} check" for node, (host, port) in servers]
    return lines


def haproxy_config(*, uplink_bind: Address, uplink_nodes: Sequence[tuple[str, Address]],
                   frontdoor_bind: Address | None = None,
                   frontdoor_nodes: Sequence[tuple[str, Address]] = (),
                   rtsp_bind: Address | None = None,
                   rtsp_nodes: Sequence[tuple[str, Address]] = (),
                   check_interval: str = "1s", maxconn: int = 200_000,
                   idle_timeout: str = "1h") -> str:
    """The text of ``haproxy.cfg`` for these nodes; ``*_nodes``: ``(name, (host, port))``.

    ``idle_timeout`` must exceed the devices' PING interval (15 s at the default
    ``--idle-timeout`` 35 s) so quiet uplinks are not cut.
    """
    # No "on-marked-down shutdown-sessions": a draining node's listener is closed (so it is
    # marked down) while its uplinks still finish the requests in flight.
    check = f"inter {check_interval} fall 2 rise 2"
    out = [
        "global",
        f"    maxconn {maxconn}",
        "",
        "defaults",
        "    mode tcp",
        "    option dontlognull",
        "    timeout connect 2s",
        f"    timeout client {idle_timeout}",
        f"    timeout server {idle_timeout}",
        f"    timeout tunnel {idle_timeout}",
        "    retries 3",
        "    option redispatch 1",
        "",
        "frontend uplinks",
        f"    bind {uplink_bind[0]}:{uplink_bind[1]}",
        "    default_backend uplink_nodes",
        "",
        *_backend("uplink_nodes", uplink_nodes, check),
    ]
    for name, bind, nodes in (("frontdoor", frontdoor_bind, frontdoor_nodes),
                              ("rtsp", rtsp_bind, rtsp_nodes)):
        if bind is None or not nodes:
            continue
        out += ["", f"frontend {name}", f"    bind {bind[0]}:{bind[1]}",
                f"    default_backend {name}_nodes", "",
                *_backend(f"{name}_nodes", nodes, check)]
    return "\n".join(out) + "\n"
