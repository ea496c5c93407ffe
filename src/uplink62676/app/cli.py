"""Command line: ``uplink62676 cloud``, ``uplink62676 device``, ``uplink62676 query``,
``uplink62676 demo``.

``cloud`` accepts uplinks and exposes the connected devices to ordinary
HTTP/1.1 and h2c clients; ``device`` gives a local HTTP/1.1 server (a legacy
camera) one or more uplinks (or serves a simulated VSS through them with
``--simulate N``); ``query`` runs a resource query through a cloud's front
door (see :mod:`uplink62676.querycli`); ``demo`` runs both over loopback TLS with
certificates it makes itself.

Exit codes: 0 success (also after Ctrl-C / SIGTERM), 1 runtime failure,
2 usage error, 3 configuration error (unreadable certificate, key, CA,
token or users file; a users file readable by group or others), 4 cannot
listen on the requested address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .. import __version__
from ..errors import ConfigurationError, UplinkError
from .args import host_port, http_url, positive_int, remote_address, seconds, user_level
from .metrics import JsonFormatter, add_operations_options, start_metrics

if TYPE_CHECKING:
    from ..frontdoor.hooks import Authorizer, BodyAuthorizer

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_LISTEN", "EXIT_OK", "EXIT_USAGE",
           "front_door_authorizer", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_LISTEN = 4

log = logging.getLogger("uplink62676.cli")


class _Parser(argparse.ArgumentParser):
    """argparse with errors on one line: what is wrong, and where the help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="uplink62676",
        description="IEC 62676-2-33 / ONVIF Uplink: cloud broker, device agent and demo.",
        epilog="Exit codes: 0 ok, 1 failure, 2 usage, 3 configuration, 4 cannot listen.",
    )
    p.add_argument("--version", action="version", version=f"uplink62676 {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser(
        "cloud", help="accept uplinks and expose the devices over HTTP/1.1 and h2c",
        description="Accept device uplinks on --listen (TLS server; h2c-reverse) and serve "
                    "/devices/<device-id>/<path> on --expose, forwarded as /<path> to that "
                    "device; with --expose-domain also <label>.DOMAIN/<path>, with "
                    "--device-ports also a port per device; GET /devices lists the connected "
                    "devices and their URLs as JSON.",
    )
    c.add_argument("--listen", type=host_port, required=True, metavar="HOST:PORT",
                   help="where devices connect (TLS unless --plaintext)")
    c.add_argument("--expose", type=host_port, required=True, metavar="HOST:PORT",
                   help="HTTP/1.1 + HTTP/2 front door (h2c prior knowledge; TLS with "
                        "--expose-cert)")
    c.add_argument("--cert", type=Path, help="cloud certificate chain (PEM)")
    c.add_argument("--key", type=Path, help="private key of --cert (PEM)")
    c.add_argument("--client-ca", type=Path, metavar="FILE",
                   help="CA bundle for device certificates (mTLS); required unless --tokens")
    c.add_argument("--tokens", type=Path, metavar="FILE",
                   help="access tokens, one 'TOKEN DEVICE-ID' per line (# comments)")
    c.add_argument("--plaintext", action="store_true",
                   help="INSECURE: accept uplinks without TLS (tests and local experiments)")
    c.add_argument("--allow-anonymous-devices", action="store_true",
                   help="INSECURE: accept TLS uplinks of devices with neither a client "
                        "certificate (--client-ca) nor an access token (--tokens)")
    c.add_argument("--grace", type=seconds, default=5.0, metavar="SECONDS",
                   help="on SIGTERM/SIGINT: how long requests in flight may still finish "
                        "(default 5), then 503 / RST_STREAM")
    c.add_argument("--idle-timeout", type=seconds, default=35.0, metavar="SECONDS",
                   help="drop a device that sent nothing for this long (it is PINGed first, "
                        "at 3/7 and 5/7 of it; default 35; 0 = never)")
    c.add_argument("--expose-domain", metavar="DOMAIN",
                   help="also route Host <label>.DOMAIN[:port] to the device of <label>, path "
                        "as is (IDs that are not DNS labels: x-- + base32, see GET /devices)")
    c.add_argument("--device-ports", metavar="LOW-HIGH",
                   help="give every device its own front-door port from this range (kept "
                        "across restarts in --state-dir; with --registry, leased across the "
                        "cluster in Redis and served by every node)")
    c.add_argument("--state-dir", type=Path, default=Path("uplink62676-state"), metavar="DIR",
                   help="where the broker keeps its state (device ports); default "
                        "./uplink62676-state")
    c.add_argument("--port-idle-release", type=float, default=7 * 24 * 3600.0,
                   metavar="SECONDS",
                   help="free a device's port this long after it went away (default 7 days)")
    c.add_argument("--expose-cert", type=Path, metavar="FILE",
                   help="TLS on the front door: certificate chain (PEM); ALPN h2 and http/1.1")
    c.add_argument("--expose-key", type=Path, metavar="FILE", help="private key of --expose-cert")
    c.add_argument("--expose-client-ca", type=Path, metavar="FILE",
                   help="CA bundle for optional client certificates at the front door")
    c.add_argument("--users", type=Path, metavar="FILE",
                   help="front-door users, one 'NAME PASSWORD DEVICE-PATTERN... [token=T]' per "
                        "line (# comments; mode 600): HTTP Digest, WS-UsernameToken, Basic and "
                        "Bearer over TLS. Without it every front-door request gets 401")
    c.add_argument("--expose-open", action="store_true",
                   help="INSECURE: no client authentication at the front door, anyone who "
                        "reaches it may call every device (tests and local experiments)")
    c.add_argument("--max-requests-per-client", type=int, default=128, metavar="N",
                   help="requests one client address may have in flight (default 128; beyond: "
                        "503 + Retry-After, or REFUSED_STREAM)")
    c.add_argument("--rtsp-listen", type=host_port, metavar="HOST:PORT",
                   help="RTSP gateway for video players: rtsp://HOST:PORT/devices/<id>/<camera "
                        "path> (RTP interleaved over TCP); players that tunnel RTSP over HTTP "
                        "use the --expose port")
    c.add_argument("--rtsp-transport", choices=("auto", "http", "websocket"), default="auto",
                   help="tunnel to the device: RFC 8441 WebSocket where offered, else the HTTP "
                        "GET/POST pair (auto, default), or only one of them")
    c.add_argument("--rtsp-player-buffer", type=int, default=8 * 1024 * 1024, metavar="OCTETS",
                   help="octets a player may leave unread before it is dropped (default 8 MiB)")
    c.add_argument("--rtsp-max-sessions-per-user", type=positive_int, metavar="N",
                   help="concurrent RTSP sessions one user may have (default: unlimited; "
                        "beyond: 453 Not Enough Bandwidth)")
    c.add_argument("--rtsp-max-sessions-per-device", type=positive_int, metavar="N",
                   help="concurrent RTSP sessions to one device (default: unlimited)")
    add_operations_options(c)
    k = c.add_argument_group(
        "cluster", "several cloud nodes behind a load balancer sharing a device registry in "
                   "Redis; any node reaches any device (docs/cluster.rst)")
    k.add_argument("--registry", metavar="redis://HOST:PORT/DB",
                   help="cluster mode: the shared device registry (needs the 'redis' package: "
                        "pip install uplink62676[cluster])")
    k.add_argument("--node-id", metavar="NAME", help="this node's name in the cluster")
    k.add_argument("--node-listen", type=host_port, metavar="HOST:PORT",
                   help="internal front door where other nodes forward requests (HTTP/2)")
    k.add_argument("--node-advertise", metavar="HOST:PORT",
                   help="the address other nodes use for --node-listen (default: it)")
    k.add_argument("--node-cert", type=Path, metavar="FILE",
                   help="this node's certificate for mTLS between nodes (with --node-key, "
                        "--node-ca)")
    k.add_argument("--node-key", type=Path, metavar="FILE", help="private key of --node-cert")
    k.add_argument("--node-ca", type=Path, metavar="FILE", help="CA of the nodes' certificates")
    k.add_argument("--node-secret-file", type=Path, metavar="FILE",
                   help="without node certificates: a secret shared by the nodes, sent on "
                        "the internal hop (loopback or a private network only)")
    k.add_argument("--registry-refresh", type=seconds, default=10.0, metavar="SECONDS",
                   help="how often a node refreshes its devices' entries (one pipeline; "
                        "TTL 3x this; default 10)")

    d = sub.add_parser(
        "device", help="keep uplinks to a cloud and forward tunneled requests to a local server",
        description="Keep an uplink to every --remote (in parallel, each with its own "
                    "reconnect schedule) and forward each tunneled request to --forward.",
    )
    d.add_argument("--remote", action="append", default=[], metavar="URL", type=remote_address,
                   help="cloud address, https://HOST[:PORT]/PATH or wss://... (repeatable)")
    d.add_argument("--cert", type=Path, help="device certificate (PEM) for mTLS")
    d.add_argument("--key", type=Path, help="private key of --cert (PEM)")
    d.add_argument("--ca", type=Path, help="CA bundle to verify the cloud (default: system store)")
    d.add_argument("--token", type=Path, metavar="FILE",
                   help="file holding the access token (re-read before every attempt)")
    d.add_argument("--user-level", default="User", metavar="LEVEL", type=user_level,
                   help="UserLevel of tunneled requests: Administrator, Operator or User "
                        "(CFG-R8; default: User)")
    d.add_argument("--id", default=None, metavar="ID",
                   help="device identity (seeds the reconnect schedule; default: certificate CN "
                        "or 'device')")
    d.add_argument("--forward", metavar="URL", type=http_url,
                   help="local HTTP/1.1 server that answers the tunneled requests "
                        "(required unless --simulate)")
    d.add_argument("--rtsp", metavar="URL",
                   help="camera's RTSP server, rtsp://HOST[:PORT]: RTSP over HTTP tunnels and "
                        "RFC 8441 WebSockets through the uplink are bridged to it")
    d.add_argument("--simulate", type=int, metavar="N",
                   help="serve a simulated VSS of N cameras through the uplink: the event "
                        "service with resource queries at /onvif/events_service and "
                        "GetServices at /onvif/device_service (other paths go to --forward)")
    d.add_argument("--seed", type=int, default=0, metavar="S",
                   help="with --simulate: seed of the camera layout and changes (default 0)")
    d.add_argument("--change-rate", type=float, default=0.2, metavar="R",
                   help="with --simulate: mean camera changes (offline/online, renames) per "
                        "second (default 0.2; 0 disables)")
    d.add_argument("--config", type=Path, metavar="FILE",
                   help="uplink configuration store; also serves /onvif/uplink_service "
                        "through the uplink so a cloud can reconfigure the device")
    d.add_argument("--plaintext", action="store_true",
                   help="INSECURE: connect to http:// remotes without TLS (tests only)")
    d.add_argument("--grace", type=seconds, default=5.0, metavar="SECONDS",
                   help="on SIGTERM/SIGINT: how long requests in flight may still finish "
                        "(default 5)")
    add_operations_options(d)

    from .querycli import add_query_parser

    add_query_parser(sub)
    from .certscli import add_certs_parser

    add_certs_parser(sub)
    sub.add_parser("demo", help="run cloud and device over loopback TLS and show each step",
                   description="Make throw-away certificates, start a cloud and a device over "
                               "loopback mTLS, send a few requests, PING, close. No set-up.")
    return p


def _logging(verbose: int, quiet: bool, json_lines: bool = False) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose >= 2 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    if json_lines:  # --log-format json: one JSON object per line
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    for noisy in ("hpack", "h2", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def read_tokens(path: Path) -> dict[str, str]:
    """Read a token file (see :func:`parse_tokens`)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read token file {str(path)!r}: {exc}") from None
    return parse_tokens(text, str(path))


def parse_tokens(text: str, name: str = "<tokens>") -> dict[str, str]:
    """``TOKEN DEVICE-ID`` lines -> mapping; ConfigurationError naming the line otherwise.

    ``#`` starts a comment (a whole line, or after the two fields); a token may
    appear only once, so no line silently overrides another.
    """
    tokens: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if "#" in raw else raw.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ConfigurationError(f"{name}:{number}: expected 'TOKEN DEVICE-ID' "
                                     f"(got {len(parts)} fields)")
        if parts[0] in tokens:
            raise ConfigurationError(f"{name}:{number}: this token is already given on line "
                                     f"{lines[parts[0]]}")
        tokens[parts[0]] = parts[1]
        lines[parts[0]] = number
    return tokens


def token_validator(tokens: dict[str, str]) -> object:
    """A constant-time validator over a token table."""
    items = [(t.encode(), device) for t, device in tokens.items()]

    def validate(token: str) -> str | None:
        found = None
        raw = token.encode()
        for known, device in items:
            if hmac.compare_digest(known, raw):
                found = device
        return found

    return validate


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")


def front_door_authorizer(users_file: Path | None,
                          expose_open: bool) -> Authorizer | BodyAuthorizer:
    """What ``cloud --users FILE`` / ``--expose-open`` put in front of the devices.

    With a file: a :class:`~uplink62676.frontdoor.auth.FrontDoorAuth` (its
    ``users`` is what the RTSP gateway shares).  ``expose_open``: everything passes
    (a WARNING says so).  Neither: every request is refused with 401.
    """
    from ..frontdoor.auth import refuse_all
    from ..frontdoor.hooks import allow_all
    from ..io.usersfile import front_door_auth, read_users_file

    if users_file is not None:
        users = read_users_file(users_file)
        log.info("front door: %d user(s) from %s (Digest, WS-UsernameToken; Basic and Bearer "
                 "over TLS only)", len(users), users_file)
        return front_door_auth(users)
    if expose_open:
        log.warning("INSECURE: --expose-open, the front door lets ANY client call EVERY "
                    "device without credentials")
        return allow_all
    log.warning("front door: no --users FILE, every request is refused with 401 "
                "(--expose-open turns authentication off)")
    return refuse_all


async def _cloud(args: argparse.Namespace) -> int:
    from ..aio.cloud import CloudServer
    from ..aio.expose import ExposeServer
    from ..frontdoor import FrontDoorSettings
    from ..frontdoor.ports import PortAssigner, parse_port_range
    from ..io.portstore import PORT_FILE_NAME, PortStore
    from ..io.tls import cloud_tls_context, frontdoor_tls_context
    from ..settings import CloudSettings

    authorizer = front_door_authorizer(args.users, args.expose_open)
    validator = None
    if args.tokens is not None:
        validator = token_validator(read_tokens(args.tokens))
    ctx = None
    if not args.plaintext:
        ctx = cloud_tls_context(cert_file=args.cert, key_file=args.key,
                                client_ca_file=args.client_ca,
                                require_client_cert=None if validator is None else False)
    else:
        log.warning("INSECURE: --plaintext, uplinks are accepted without TLS")
    idle = args.idle_timeout or None
    settings = CloudSettings(idle_timeout=idle,
                             idle_ping_after=(idle * 3 / 7, idle * 5 / 7) if idle else ())
    if args.allow_anonymous_devices:
        log.warning("INSECURE: --allow-anonymous-devices, devices without a certificate or a "
                    "token are accepted")
    cloud = CloudServer(ssl_context=ctx, insecure_plaintext=args.plaintext, settings=settings,
                        token_validator=validator,  # type: ignore[arg-type]
                        allow_anonymous=True if (args.allow_anonymous_devices or (args.plaintext
                                                 and validator is None)) else None)
    expose_ctx = None
    if args.expose_cert is not None:
        expose_ctx = frontdoor_tls_context(cert_file=args.expose_cert, key_file=args.expose_key,
                                           client_ca_file=args.expose_client_ca)
    ports = store = None
    if args.device_ports is not None and args.registry is None:  # cluster: leased in Redis
        import time

        low, high = parse_port_range(args.device_ports)
        store = PortStore(args.state_dir / PORT_FILE_NAME)
        ports = PortAssigner(low, high, idle_release=args.port_idle_release,
                             leases=store.load(), now=time.time())
    expose = ExposeServer(cloud, domain=args.expose_domain, ssl_context=expose_ctx,
                          device_ports=ports, port_store=store,
                          authorize=authorizer,
                          settings=FrontDoorSettings(
                              max_requests_per_client=args.max_requests_per_client))
    gateway = None
    if args.rtsp_listen is not None:
        from ..aio.rtspgateway import RtspGateway
        from ..rtsp.gateway import GatewaySettings, SessionLimits

        # Players authenticate against the same users as the front door (RTSP Digest).
        gateway = RtspGateway(cloud, users=getattr(authorizer, "users", None),
                              transport=args.rtsp_transport, domain=args.expose_domain,
                              settings=GatewaySettings(max_player_buffer=args.rtsp_player_buffer),
                              limits=SessionLimits(args.rtsp_max_sessions_per_user,
                                                   args.rtsp_max_sessions_per_device))
        expose.rtsp_hook = gateway.take_http_channel
    metrics = None
    cluster = _cluster_node(args, cloud) if args.registry is not None else None
    if cluster is not None and args.device_ports is not None:
        from ..aio.clusterports import ClusterPorts

        if not args.port_idle_release > 3 * args.registry_refresh:
            raise _Usage("--port-idle-release must be longer than three --registry-refresh "
                         "intervals (a connected device's lease is renewed at each refresh)")
        low, high = parse_port_range(args.device_ports)
        cluster.ports = ClusterPorts(expose, low, high, idle_release=args.port_idle_release)
    try:
        metrics = start_metrics(args.metrics, "cloud", cloud, expose)
        await cloud.start(*args.listen)
        await expose.start(*args.expose)
        if gateway is not None:
            await gateway.start(*args.rtsp_listen)
            from ..frontdoor.rewrite import CloudRewriter

            # GetStreamUri through the front door answers the gateway's URL (MED-R12).
            expose.rewriter = CloudRewriter(extra_rules=gateway.stream_uri_rules())
        if cluster is not None:
            await cluster.start()
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        await expose.close()
        await cloud.close()
        if metrics is not None:
            metrics.close()
        return EXIT_LISTEN
    try:
        await _until_signalled()
    finally:
        if metrics is not None:
            metrics.close()
        # Graceful: stop accepting, GOAWAY to every device, requests in flight get
        # --grace seconds, then 503 / RST_STREAM, then everything closes.
        cloud.begin_shutdown()
        if gateway is not None:
            await gateway.close()
        await expose.close(grace=args.grace)
        if cluster is not None:
            await cluster.close(grace=args.grace)
        await cloud.close()
    return EXIT_OK


def _cluster_node(args: argparse.Namespace, cloud: Any) -> Any:
    """``cloud --registry ...``: this process as one node of a cluster."""
    import ssl

    if args.node_id is None or args.node_listen is None:
        raise _Usage("--registry needs --node-id NAME and --node-listen HOST:PORT")
    certs = (args.node_cert, args.node_key, args.node_ca)
    if any(certs) and not (args.node_cert and args.node_ca):
        raise _Usage("mTLS between nodes needs --node-cert and --node-ca (and --node-key)")
    if not args.node_cert and args.node_secret_file is None:
        raise _Usage("--registry needs --node-cert/--node-key/--node-ca (mTLS between nodes) "
                     "or --node-secret-file")
    try:
        from ..aio.cluster import ClusterNode, node_client_tls_context, node_server_tls_context
    except ImportError as exc:
        raise ConfigurationError(f"cluster mode needs the 'redis' package ({exc}); "
                                 "pip install 'uplink62676[cluster]'") from None
    server_ssl = client_ssl = None
    secret = None
    try:
        if args.node_cert:
            key = str(args.node_key) if args.node_key else None
            server_ssl = node_server_tls_context(str(args.node_cert), key, str(args.node_ca))
            client_ssl = node_client_tls_context(str(args.node_cert), key, str(args.node_ca))
        if args.node_secret_file is not None:
            secret = args.node_secret_file.read_bytes().strip()
            if len(secret) < 16:
                raise ConfigurationError(f"{str(args.node_secret_file)!r}: the node secret "
                                         "needs at least 16 characters")
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cluster: {exc}") from None
    if not args.registry.startswith(("redis://", "rediss://", "unix://")):
        raise _Usage(f"--registry needs a redis:// URL, got {args.registry[:80]!r}")
    return ClusterNode(cloud, redis_url=args.registry, node_id=args.node_id,
                       listen=args.node_listen, advertise=args.node_advertise,
                       server_ssl=server_ssl, client_ssl=client_ssl, secret=secret,
                       refresh=args.registry_refresh)


def _device_identity(args: argparse.Namespace) -> str:
    if args.id:
        return str(args.id)
    if args.cert is not None:
        with contextlib.suppress(Exception):
            from cryptography import x509
            from cryptography.x509.oid import NameOID

            cert = x509.load_pem_x509_certificate(args.cert.read_bytes())
            names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if names:
                return str(names[0].value)
    return "device"


async def _device(args: argparse.Namespace) -> int:
    from ..aio._common import UplinkSpec
    from ..aio.device import DeviceAgent, Handler
    from ..aio.forward import HttpForwarder
    from ..io.tls import device_tls_context

    if not args.remote and args.config is None:
        raise _Usage("device needs at least one --remote (or --config)")
    if args.forward is None and args.simulate is None and args.rtsp is None:
        raise _Usage("device needs --forward URL or --simulate N (or --rtsp URL)")
    if args.simulate is not None and not 1 <= args.simulate <= 100_000:
        raise _Usage(f"--simulate needs 1..100000 cameras, got {args.simulate}")
    if args.change_rate < 0:
        raise _Usage(f"--change-rate must be >= 0, got {args.change_rate}")
    ctx = None
    if not args.plaintext:
        ctx = device_tls_context(ca_file=args.ca, cert_file=args.cert, key_file=args.key)
    else:
        log.warning("INSECURE: --plaintext, uplinks run without TLS")
    token_file: Path | None = args.token
    if token_file is not None:
        try:
            token_file.read_text()
        except OSError as exc:
            raise ConfigurationError(f"cannot read token file {str(token_file)!r}: "
                                     f"{exc.strerror}") from None

    def token() -> str:
        assert token_file is not None
        return token_file.read_text().strip()

    def spec(address: str, level: str | Sequence[str]) -> UplinkSpec:
        return UplinkSpec(address, ctx, token if token_file is not None else None, level,
                          insecure_plaintext=args.plaintext)

    forwarder: Handler | None = HttpForwarder(args.forward, rtsp=args.rtsp) \
        if args.forward else None
    vss_host = None
    if args.simulate is not None:
        import time

        from ..aio.vss import VssHost
        from .simulate import SimulatedVss

        # The layout follows --seed; subscription addresses must not: two simulated devices
        # with one seed must never hand out the same pull-point address.
        vss_host = VssHost(SimulatedVss(args.simulate, seed=args.seed, now=time.time(),
                                        id_seed=os.urandom(16),
                                        change_rate=args.change_rate),
                           fallback=forwarder, device_service=forwarder is None)
        vss_host.start()
        log.info("serving a simulated VSS of %d cameras (seed %d)", args.simulate, args.seed)
    handler: Handler = vss_host if vss_host is not None else forwarder  # type: ignore[assignment]
    if args.rtsp is not None:
        from ..aio.rtspbridge import RtspBridge

        handler = RtspBridge(args.rtsp, handler)
        log.info("bridging RTSP tunnels to %s", args.rtsp)
    agent: DeviceAgent
    configured = [spec(a, args.user_level) for a in args.remote]
    if args.config is not None:
        import attrs

        from ..aio.config import CAPABILITIES, PLAINTEXT_CAPABILITIES, ConfiguredDevice
        from ..config import UplinkConfiguration

        # Each --remote becomes stored configuration (listed, changeable, deletable). The
        # CLI has one TLS identity: its CertificateID / AuthorizationServer name it "cli".
        seed = [UplinkConfiguration(a, tuple(args.user_level.split()),
                                    certificate_id=None if token_file is not None else "cli",
                                    authorization_server="cli" if token_file is not None
                                    else None)
                for a in args.remote]
        configured_device = ConfiguredDevice(
            args.config, handler, spec, seed=seed,
            # UPL-54: StreamingOverUplink when RTSP is bridged through the uplink.
            capabilities=attrs.evolve(PLAINTEXT_CAPABILITIES if args.plaintext else CAPABILITIES,
                                      streaming_over_uplink=args.rtsp is not None))
        handler = configured_device
        agent = DeviceAgent(handler, identity=_device_identity(args),
                            uplinks=configured_device.initial())
        configured_device.agent = agent
    else:
        agent = DeviceAgent(handler, identity=_device_identity(args), uplinks=configured)
    try:
        metrics = start_metrics(args.metrics, "device", agent)
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        return EXIT_LISTEN
    await agent.start()
    try:
        await _until_signalled()
    finally:
        if metrics is not None:
            metrics.close()
        await agent.stop(grace=args.grace)
        if vss_host is not None:
            await vss_host.close()
    return EXIT_OK


class _Usage(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``uplink62676`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("a command is needed: cloud, device, query or demo")
    if args.command == "certs":
        from .certscli import run_certs

        return run_certs(args)
    if args.command == "demo":
        from .demo import run

        return run()
    if args.command == "query":
        from .querycli import run_query

        if (args.near is None) != (args.radius is None):
            parser.error("--near and --radius go together")
        if args.follow and not args.timeout < 60:
            parser.error("--timeout must be below 60 s (the subscription's lifetime)")
        if args.duration is not None and not args.follow:
            parser.error("--for needs --follow")
        _logging(args.verbose, True)
        return run_query(args)
    _logging(args.verbose, args.quiet, getattr(args, "log_format", "text") == "json")
    if args.command == "cloud" and not args.plaintext and (args.cert is None or args.key is None):
        parser.error("cloud needs --cert and --key (or the INSECURE --plaintext)")
    if (args.command == "cloud" and args.rtsp_listen is not None and args.users is None
            and not args.expose_open):
        parser.error("--rtsp-listen needs --users FILE for the players (or the INSECURE "
                     "--expose-open)")
    if args.command == "cloud" and args.plaintext and args.client_ca is not None:
        parser.error("--client-ca needs TLS: without it (--plaintext) no device can present a "
                     "certificate")
    if (args.command == "cloud" and not args.plaintext and args.client_ca is None
            and args.tokens is None and not args.allow_anonymous_devices):
        parser.error("cloud needs --client-ca (mTLS) or --tokens to authenticate devices "
                     "(or the INSECURE --allow-anonymous-devices)")
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")
    if args.command == "cloud":
        if (args.expose_cert is None) != (args.expose_key is None):
            parser.error("--expose-cert and --expose-key go together")
        if args.expose_client_ca is not None and args.expose_cert is None:
            parser.error("--expose-client-ca needs --expose-cert")
        if not args.port_idle_release > 0:
            parser.error("--port-idle-release must be positive")
        if args.users is not None and args.expose_open:
            parser.error("--users and --expose-open exclude each other")
        if args.max_requests_per_client < 1:
            parser.error("--max-requests-per-client must be >= 1")
    try:
        return asyncio.run(_cloud(args) if args.command == "cloud" else _device(args))
    except _Usage as exc:
        parser.error(str(exc))
    except ConfigurationError as exc:
        log.error("configuration error: %s", exc)
        return EXIT_CONFIG
    except UplinkError as exc:
        log.error("%s", exc)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:  # a bug of ours: one line, the traceback only with -vv
        log.error("internal error: %s: %s (run with -vv for details)",
                  type(exc).__name__, exc, exc_info=args.verbose >= 2)
        return EXIT_FAILURE
    return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
