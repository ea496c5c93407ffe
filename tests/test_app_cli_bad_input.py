"""The command line against bad input: every case exits with its documented code and says
what is wrong in one line (argparse adds its usage line), never with a Python traceback.

Exit codes (``uplink62676 --help``): 1 failure, 2 usage, 3 configuration, 4 cannot listen.
The cases run as real subprocesses, each against files made for it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from _adapters_util import Pki, make_pki

CMD = [sys.executable, "-m", "uplink62676"]
USAGE, CONFIG, FAILURE, LISTEN = 2, 3, 1, 4


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad")
    out: dict[str, str] = {}

    def put(name: str, data: str | bytes) -> None:
        path = d / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        out[name] = str(path)

    put("not-pem.pem", "hello, I am no certificate\n")
    put("binary.pem", b"\x00\x01\x02\xff" * 64)
    put("empty.pem", "")
    put("tokens-one-field", "lonely-token\n")
    put("tokens-three-fields", "tok dev extra\n")
    put("tokens-duplicate", "tok-a dev-1\n# a comment\ntok-a dev-2\n")
    put("tokens-binary", b"\xff\xfe\x00garbage\n")
    put("store-damaged.xml", "<not-a-store")
    put("store-wrong-root.xml", '<?xml version="1.0"?><other/>')
    put("store-doctype.xml", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    out["missing"] = str(d / "does-not-exist")
    out["dir"] = str(d)
    return out


def _busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


# (id, argv builder, exit code, text expected on stderr)
Case = tuple[str, Callable[[Pki, dict[str, str]], list[str]], int, str]


def cloud(*extra: str) -> list[str]:
    return ["cloud", "--listen", "127.0.0.1:0", "--expose", "127.0.0.1:0", *extra]


def tls(p: Pki) -> list[str]:
    return ["--cert", p.cloud[0], "--key", p.cloud[1], "--client-ca", p.ca]


def device(*extra: str) -> list[str]:
    return ["device", "--plaintext", *extra]


FWD = ("--forward", "http://127.0.0.1:9")
REMOTE = ("--remote", "http://127.0.0.1:9/u")

CASES: list[Case] = [
    # --- usage: the command line itself -------------------------------------------------------
    ("no-command", lambda p, f: [], USAGE, "a command is needed"),
    ("unknown-command", lambda p, f: ["fly"], USAGE, "invalid choice"),
    ("cloud-no-listen", lambda p, f: ["cloud", "--expose", "127.0.0.1:0"], USAGE, "--listen"),
    ("listen-no-port", lambda p, f: cloud("--listen", "127.0.0.1"), USAGE, "HOST:PORT"),
    ("listen-port-word", lambda p, f: ["cloud", "--listen", "h:abc", "--expose", ":1"], USAGE,
     "HOST:PORT"),
    ("listen-port-range", lambda p, f: ["cloud", "--listen", "h:99999", "--expose", ":1"],
     USAGE, "HOST:PORT"),
    ("listen-ipv6-unbalanced", lambda p, f: ["cloud", "--listen", "[::1:80", "--expose", ":1"],
     USAGE, "brackets"),
    ("cloud-no-cert", lambda p, f: cloud(), USAGE, "--cert and --key"),
    ("cloud-cert-without-key", lambda p, f: cloud("--cert", p.cloud[0], "--client-ca", p.ca),
     USAGE, "--cert and --key"),
    ("cloud-anonymous-tls", lambda p, f: cloud("--cert", p.cloud[0], "--key", p.cloud[1]),
     USAGE, "--allow-anonymous-devices"),
    ("cloud-plaintext-client-ca", lambda p, f: cloud("--plaintext", "--client-ca", p.ca), USAGE,
     "--client-ca needs TLS"),
    ("idle-timeout-word", lambda p, f: cloud("--plaintext", "--idle-timeout", "soon"), USAGE,
     "expected seconds"),
    ("idle-timeout-negative", lambda p, f: cloud("--plaintext", "--idle-timeout", "-1"), USAGE,
     "0 or more seconds"),
    ("grace-nan", lambda p, f: cloud("--plaintext", "--grace", "nan"), USAGE, "seconds"),
    ("device-no-remote", lambda p, f: device(*FWD), USAGE, "--remote"),
    ("device-no-forward", lambda p, f: device(*REMOTE), USAGE, "--forward URL or --simulate"),
    ("remote-ftp", lambda p, f: device("--remote", "ftp://cloud/u", *FWD), USAGE, "scheme"),
    ("remote-space", lambda p, f: device("--remote", "https://cloud/up link", *FWD), USAGE,
     "not allowed in a URI"),
    ("remote-bad-port", lambda p, f: device("--remote", "https://cloud:99999/u", *FWD), USAGE,
     "Port out of range"),
    ("remote-ipv6-broken", lambda p, f: device("--remote", "https://[::1/u", *FWD), USAGE,
     "Invalid IPv6"),
    ("remote-no-host", lambda p, f: device("--remote", "https:///u", *FWD), USAGE, "no host"),
    ("forward-bad-port", lambda p, f: device(*REMOTE, "--forward", "http://127.0.0.1:99999"),
     USAGE, "Port out of range"),
    ("forward-ipv6-broken", lambda p, f: device(*REMOTE, "--forward", "http://[::1"), USAGE,
     "Invalid IPv6"),
    ("forward-ftp", lambda p, f: device(*REMOTE, "--forward", "ftp://cam"), USAGE,
     "http:// or https://"),
    ("user-level-superuser", lambda p, f: device(*REMOTE, *FWD, "--user-level", "Superuser"),
     USAGE, "CFG-R8"),
    ("user-level-anonymous", lambda p, f: device(*REMOTE, *FWD, "--user-level", "Anonymous"),
     USAGE, "CFG-R8"),
    ("simulate-zero", lambda p, f: device(*REMOTE, "--simulate", "0"), USAGE, "1..100000"),
    ("simulate-word", lambda p, f: device(*REMOTE, "--simulate", "many"), USAGE,
     "invalid int value"),
    ("change-rate-negative", lambda p, f: device(*REMOTE, "--simulate", "1", "--change-rate",
                                                 "-2"), USAGE, ">= 0"),
    ("query-port-range", lambda p, f: ["query", "http://127.0.0.1:99999/x"], USAGE,
     "Port out of range"),
    ("query-port-word", lambda p, f: ["query", "http://127.0.0.1:abc/x"], USAGE,
     "not a valid URI"),
    ("query-ipv6-broken", lambda p, f: ["query", "http://[::1/x"], USAGE, "Invalid IPv6"),
    ("query-scheme", lambda p, f: ["query", "gopher://h/x"], USAGE, "http:// or https://"),
    ("query-near-without-radius", lambda p, f: ["query", "http://127.0.0.1:9/x", "--near",
                                                "32,118"], USAGE, "--near and --radius"),
    ("query-near-garbage", lambda p, f: ["query", "http://127.0.0.1:9/x", "--near", "north",
                                         "--radius", "5"], USAGE, "--near"),
    # --- configuration: files -----------------------------------------------------------------
    ("cert-missing", lambda p, f: cloud("--cert", f["missing"], "--key", p.cloud[1],
                                        "--client-ca", p.ca), CONFIG, "does-not-exist"),
    ("cert-not-pem", lambda p, f: cloud("--cert", f["not-pem.pem"], "--key", p.cloud[1],
                                        "--client-ca", p.ca), CONFIG, "no PEM data"),
    ("cert-is-a-directory", lambda p, f: cloud("--cert", f["dir"], "--key", p.cloud[1],
                                               "--client-ca", p.ca), CONFIG, "certificate"),
    ("key-not-pem", lambda p, f: cloud("--cert", p.cloud[0], "--key", f["binary.pem"],
                                       "--client-ca", p.ca), CONFIG, "private key"),
    ("key-of-another-cert", lambda p, f: cloud("--cert", p.cloud[0],
                                               "--key", p.devices["cam-1"][1],
                                               "--client-ca", p.ca), CONFIG, "does not belong"),
    ("client-ca-missing", lambda p, f: cloud("--cert", p.cloud[0], "--key", p.cloud[1],
                                             "--client-ca", f["missing"]), CONFIG,
     "cannot load CA bundle"),
    ("client-ca-empty", lambda p, f: cloud("--cert", p.cloud[0], "--key", p.cloud[1],
                                           "--client-ca", f["empty.pem"]), CONFIG,
     "cannot load CA bundle"),
    ("tokens-missing", lambda p, f: cloud(*tls(p), "--tokens", f["missing"]), CONFIG,
     "cannot read token file"),
    ("tokens-one-field", lambda p, f: cloud(*tls(p), "--tokens", f["tokens-one-field"]), CONFIG,
     ":1: expected 'TOKEN DEVICE-ID'"),
    ("tokens-three-fields", lambda p, f: cloud(*tls(p), "--tokens", f["tokens-three-fields"]),
     CONFIG, "(got 3 fields)"),
    ("tokens-duplicate", lambda p, f: cloud(*tls(p), "--tokens", f["tokens-duplicate"]), CONFIG,
     ":3: this token is already given on line 1"),
    ("tokens-binary", lambda p, f: cloud(*tls(p), "--tokens", f["tokens-binary"]), CONFIG,
     "token file"),
    ("device-token-missing", lambda p, f: device(*REMOTE, *FWD, "--token", f["missing"]), CONFIG,
     "cannot read token file"),
    ("device-ca-missing", lambda p, f: ["device", "--remote", "https://localhost:9/u", *FWD,
                                        "--ca", f["missing"]], CONFIG, "cannot load CA bundle"),
    ("device-cert-not-pem", lambda p, f: ["device", "--remote", "https://localhost:9/u", *FWD,
                                          "--cert", f["not-pem.pem"], "--key", p.cloud[1]],
     CONFIG, "no PEM data"),
    # --- failures: a store that cannot be used --------------------------------------------------
    ("store-damaged", lambda p, f: device(*FWD, "--config", f["store-damaged.xml"]), FAILURE,
     "not a valid uplink store"),
    ("store-wrong-root", lambda p, f: device(*FWD, "--config", f["store-wrong-root.xml"]),
     FAILURE, "not the store's"),
    ("store-doctype", lambda p, f: device(*FWD, "--config", f["store-doctype.xml"]), FAILURE,
     "not a valid uplink store"),
    ("store-is-a-directory", lambda p, f: device(*FWD, "--config", f["dir"]), FAILURE,
     "cannot read"),
]


@pytest.mark.parametrize(("argv", "code", "text"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line(pki: Pki, files: dict[str, str],
                                       argv: Callable[[Pki, dict[str, str]], list[str]],
                                       code: int, text: str, tmp_path: Path) -> None:
    r = subprocess.run([*CMD, *argv(pki, files)], capture_output=True, text=True, timeout=30,
                       check=False, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == code, (r.returncode, r.stderr)
    assert text in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= (2 if code == USAGE else 1) + 1, r.stderr


def test_there_are_forty_cases() -> None:
    """The issue asks for a corpus of at least 40 invalid invocations and inputs."""
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


def test_cannot_listen_is_its_own_code(pki: Pki, tmp_path: Path) -> None:
    busy, port = _busy_port()
    with busy:
        r = subprocess.run([*CMD, "cloud", "--listen", f"127.0.0.1:{port}", "--expose",
                            "127.0.0.1:0", *tls(pki)], capture_output=True, text=True,
                           timeout=30, check=False, cwd=tmp_path)
    assert r.returncode == LISTEN and "cannot listen" in r.stderr
    assert "Traceback" not in r.stderr
