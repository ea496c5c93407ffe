"""Command line: ``uplink62676 cloud``, ``uplink62676 device``, ``uplink62676 query``,
``uplink62676 demo``.

``cloud`` accepts uplinks and exposes the connected devices to ordinary
HTTP/1.1 and h2c clients; ``device`` gives a local HTTP/1.1 server (a legacy
camera) one or more uplinks (or serves a simulated VSS through them with
``--simulate N``); ``query`` runs a resource query through a cloud's front
door (see :mod:`uplink62676.querycli`); ``demo`` runs both over loopback TLS with
certificates it makes itself.

Exit codes: 0 success (also after Ctrl-C / SIGTERM), 1 runtime failure,
2 usage error, 3 configuration error (unreadable certificate, key, CA or
token file), 4 cannot listen on the requested address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..errors import ConfigurationError, UplinkError

if TYPE_CHECKING:
    from ..users import Users

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_LISTEN", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_LISTEN = 4

log = logging.getLogger("uplink62676.cli")


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
                    "device; GET /devices lists the connected devices as JSON.",
    )
    c.add_argument("--listen", type=_host_port, required=True, metavar="HOST:PORT",
                   help="where devices connect (TLS unless --plaintext)")
    c.add_argument("--expose", type=_host_port, required=True, metavar="HOST:PORT",
                   help="plain HTTP/1.1 + HTTP/2 prior-knowledge (h2c) front door")
    c.add_argument("--cert", type=Path, help="cloud certificate chain (PEM)")
    c.add_argument("--key", type=Path, help="private key of --cert (PEM)")
    c.add_argument("--client-ca", type=Path, metavar="FILE",
                   help="CA bundle for device certificates (mTLS); required unless --tokens")
    c.add_argument("--tokens", type=Path, metavar="FILE",
                   help="access tokens, one 'TOKEN DEVICE-ID' per line (# comments)")
    c.add_argument("--plaintext", action="store_true",
                   help="INSECURE: accept uplinks without TLS (tests and local experiments)")
    c.add_argument("--rtsp-listen", type=_host_port, metavar="HOST:PORT",
                   help="RTSP gateway for video players: rtsp://HOST:PORT/devices/<id>/<camera "
                        "path> (RTP interleaved over TCP); players that tunnel RTSP over HTTP "
                        "use the --expose port")
    c.add_argument("--rtsp-transport", choices=("auto", "http", "websocket"), default="auto",
                   help="tunnel to the device: RFC 8441 WebSocket where offered, else the HTTP "
                        "GET/POST pair (auto, default), or only one of them")
    c.add_argument("--rtsp-player-buffer", type=int, default=8 * 1024 * 1024, metavar="OCTETS",
                   help="octets a player may leave unread before it is dropped (default 8 MiB)")

    d = sub.add_parser(
        "device", help="keep uplinks to a cloud and forward tunneled requests to a local server",
        description="Keep an uplink to every --remote (in parallel, each with its own "
                    "reconnect schedule) and forward each tunneled request to --forward.",
    )
    d.add_argument("--remote", action="append", default=[], metavar="URL",
                   help="cloud address, https://HOST[:PORT]/PATH or wss://... (repeatable)")
    d.add_argument("--cert", type=Path, help="device certificate (PEM) for mTLS")
    d.add_argument("--key", type=Path, help="private key of --cert (PEM)")
    d.add_argument("--ca", type=Path, help="CA bundle to verify the cloud (default: system store)")
    d.add_argument("--token", type=Path, metavar="FILE",
                   help="file holding the access token (re-read before every attempt)")
    d.add_argument("--user-level", default="User", metavar="LEVEL",
                   help="UserLevel of tunneled requests (space-separated roles allowed; "
                        "default: User)")
    d.add_argument("--id", default=None, metavar="ID",
                   help="device identity (seeds the reconnect schedule; default: certificate CN "
                        "or 'device')")
    d.add_argument("--forward", metavar="URL",
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

    from .querycli import add_query_parser

    add_query_parser(sub)
    sub.add_parser("demo", help="run cloud and device over loopback TLS and show each step",
                   description="Make throw-away certificates, start a cloud and a device over "
                               "loopback mTLS, send a few requests, PING, close. No set-up.")
    return p


def _logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose >= 2 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
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
    """``TOKEN DEVICE-ID`` lines (``#`` comments) -> mapping; ConfigurationError on a bad line."""
    path = name
    tokens: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ConfigurationError(f"{path}:{number}: expected 'TOKEN DEVICE-ID'")
        tokens[parts[0]] = parts[1]
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


def _gateway_users(args: argparse.Namespace) -> Users | None:
    """The cloud's users for the RTSP gateway (``--users``, when the cloud has that option)."""
    from ..users import Users, parse_users

    users = getattr(args, "users", None)
    if users is None or isinstance(users, Users):
        return users
    try:
        return parse_users(Path(users).read_text())
    except OSError as exc:
        raise ConfigurationError(f"cannot read users file {str(users)!r}: {exc}") from None


async def _cloud(args: argparse.Namespace) -> int:
    from ..aio.cloud import CloudServer
    from ..aio.expose import ExposeServer
    from ..io.tls import cloud_tls_context

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
    cloud = CloudServer(ssl_context=ctx, insecure_plaintext=args.plaintext,
                        token_validator=validator,  # type: ignore[arg-type]
                        allow_anonymous=True if (args.client_ca is None and validator is None)
                        else None)
    expose = ExposeServer(cloud)
    gateway = None
    if args.rtsp_listen is not None:
        from ..aio.rtspgateway import RtspGateway
        from ..rtsp.gateway import GatewaySettings

        gateway = RtspGateway(cloud, users=_gateway_users(args), transport=args.rtsp_transport,
                              settings=GatewaySettings(max_player_buffer=args.rtsp_player_buffer))
        expose.rtsp_hook = gateway.take_http_channel
    try:
        await cloud.start(*args.listen)
        await expose.start(*args.expose)
        if gateway is not None:
            await gateway.start(*args.rtsp_listen)
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        await expose.close()
        await cloud.close()
        return EXIT_LISTEN
    try:
        await _until_signalled()
    finally:
        if gateway is not None:
            await gateway.close()
        await expose.close()
        await cloud.close()
    return EXIT_OK


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

    forwarder: Handler | None = HttpForwarder(args.forward) if args.forward else None
    vss_host = None
    if args.simulate is not None:
        import time

        from ..aio.vss import VssHost
        from .simulate import SimulatedVss

        vss_host = VssHost(SimulatedVss(args.simulate, seed=args.seed, now=time.time(),
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
    await agent.start()
    try:
        await _until_signalled()
    finally:
        await agent.stop()
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
        parser.print_help()
        return EXIT_USAGE
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
    _logging(args.verbose, args.quiet)
    if args.command == "cloud" and not args.plaintext and (args.cert is None or args.key is None):
        parser.error("cloud needs --cert and --key (or the INSECURE --plaintext)")
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")
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
    return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
