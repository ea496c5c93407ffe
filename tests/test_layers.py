"""The layering rule of design.md: nothing below the adapters does I/O.

Modules outside ``aio/``, ``threaded/``, ``store.py`` and the applications
(``cli.py``, ``__main__.py``, ``demo.py``, ``simulate.py``) must not import
socket, ssl, asyncio, threading, time, random, os or subprocess, so that the
state machines stay sans-I/O: time comes in as ``now`` and randomness as a seed.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "src" / "uplink62676"
FORBIDDEN = {
    "socket",
    "ssl",
    "asyncio",
    "threading",
    "time",
    "random",
    "os",
    "subprocess",
    "selectors",
    "tempfile",
    "shutil",
}
IO_LAYER = {"aio", "threaded"}
IO_MODULES = {"cli.py", "__main__.py", "demo.py", "simulate.py", "store.py", "tls.py", "certs.py"}


def _core_modules() -> list[pathlib.Path]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] in IO_LAYER or rel.name in IO_MODULES:
            continue
        out.append(path)
    return out


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_core_module_does_no_io(path: pathlib.Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not (imported & FORBIDDEN), f"{path.name} imports {sorted(imported & FORBIDDEN)}"


def test_there_are_core_modules() -> None:
    assert len(_core_modules()) >= 3


PROTOCOL_DEPS = {"h2", "h11", "hpack", "hyperframe", "wsproto", "lxml"}
BYTE_MOVERS = ["aio/expose.py", "aio/forward.py", "aio/query.py", "demo.py"]


@pytest.mark.parametrize("rel", BYTE_MOVERS)
def test_byte_movers_import_no_protocol_dependency(rel: str) -> None:
    """design.md: adapters and applications move bytes and time; only the sans-I/O layers
    touch h2, h11, hpack, wsproto or lxml."""
    tree = ast.parse((PKG / rel).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not (imported & PROTOCOL_DEPS), f"{rel} imports {sorted(imported & PROTOCOL_DEPS)}"
