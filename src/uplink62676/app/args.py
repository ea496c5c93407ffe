"""Argument types of the command line: each refuses a bad value with one clear line.

argparse turns an :class:`argparse.ArgumentTypeError` into ``usage: ...`` plus
``error: argument --x: <our message>`` and exit code 2, so no bad value reaches
code that would fail on it later with a traceback.
"""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..handshake import RemoteAddress, uri_syntax_problem

__all__ = ["host_port", "http_url", "positive_int", "remote_address", "seconds", "user_level"]

#: UserLevel values a tunneled request may carry (CFG-R8; this CLI has no roles).
USER_LEVELS = ("Administrator", "Operator", "User")


def http_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL with a host and a valid port."""
    problem = uri_syntax_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise argparse.ArgumentTypeError(f"{text!r}: need an http:// or https:// URL")
    return text


def remote_address(text: str) -> str:
    """A cloud address: ``https://`` or ``wss://`` (``http://``/``ws://`` with --plaintext)."""
    try:
        RemoteAddress.parse(text, allow_plaintext=True)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 in brackets); an empty host is 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") != host.endswith("]"):
        raise argparse.ArgumentTypeError(f"unbalanced brackets in {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def seconds(text: str) -> float:
    """A duration in seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value < 1e9:
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text!r}")
    return value


def user_level(text: str) -> str:
    """One or more of Administrator, Operator, User, space-separated (CFG-R8)."""
    items = text.split()
    bad = [i for i in items if i not in USER_LEVELS]
    if not items or bad:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a UserLevel is {', '.join(USER_LEVELS)} (CFG-R8), not "
            f"{', '.join(map(repr, bad)) or 'empty'}")
    return text


def positive_int(text: str) -> int:
    """An integer >= 1 (a limit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
