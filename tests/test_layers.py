"""The house's layers (docs/architecture.rst): imports flow downward only.

Every module of the package has a layer, by folder or by the table below; a
module not placed fails the test, so a new module must be placed when it is
written.  Four rules, no exemptions:

* no import from a higher layer (``TYPE_CHECKING`` imports count too);
* no import cycle between modules;
* no I/O module (socket, ssl, asyncio, threading, time, random, os, subprocess,
  selectors, tempfile, shutil) below the adapters;
* no protocol dependency (h2, h11, hpack, hyperframe, wsproto, lxml) in the
  adapters or the applications: they move bytes, the layers below parse them.

Besides reading imports, two tests import the package in a fresh interpreter
and list what it loaded: ``import uplink62676`` loads none of the I/O modules,
``import uplink62676.threaded`` loads no asyncio.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "src" / "uplink62676"

VALUES, CODECS, MACHINES, SERVICES, ADAPTERS, APPLICATIONS = 1, 2, 3, 4, 5, 6
NAMES = {1: "values", 2: "codecs", 3: "state machines", 4: "services", 5: "adapters",
         6: "applications"}

#: Folders whose every module has one layer.
BY_FOLDER = {
    "services": SERVICES,
    "frontdoor": MACHINES,
    "io": ADAPTERS,
    "aio": ADAPTERS,
    "threaded": ADAPTERS,
    "app": APPLICATIONS,
    "query.filters": CODECS,
    "rtsp": CODECS,  # RTSP messages, URL rewriting, the HTTP tunnel codec
}

#: Every other module, by its dotted name below ``uplink62676``.
BY_MODULE = {
    "": SERVICES,  # the package itself: the public face of layers 1-4
    "__main__": APPLICATIONS,
    "_moved": VALUES,  # a table of old paths; resolves them by name only when used
    "errors": VALUES,
    "events": VALUES,
    "status": VALUES,
    "settings": VALUES,
    "deviceid": VALUES,
    "tokens": VALUES,
    "tokenmap": VALUES,
    "namespaces": VALUES,
    "_ratelimit": VALUES,
    "query": VALUES,
    "query.geodesy": VALUES,
    "query.resources": VALUES,
    "_xml": CODECS,
    "users": CODECS,  # the front door's users file, parsed from text
    "soap": CODECS,
    "config": CODECS,  # the tup:Configuration values together with their XML form
    "storeformat": CODECS,
    "origins": CODECS,  # Origin and the Forwarded / X-Forwarded-* header codec
    "urirewrite": CODECS,  # DEV-29 URIs in SOAP bodies, spliced in place
    "query.xstime": CODECS,
    "query.faults": CODECS,
    "query.messages": CODECS,
    "handshake": MACHINES,
    "websocket": MACHINES,
    "framelimits": MACHINES,
    "tunnel": MACHINES,
    "liveness": MACHINES,
    "uplink": MACHINES,
    "oauth": MACHINES,
    "agent": MACHINES,
    "cloudauth": MACHINES,
    "httpauth": MACHINES,  # Digest nonces and the nc replay table
    "wsse": MACHINES,  # the UsernameToken replay cache
    "clientauth": MACHINES,  # the front door's authentication decision and failure limiter
    "camerarewrite": MACHINES,  # a legacy camera's URIs through the tunneled origin
    "deviceregistry": MACHINES,
    "clusterregistry": MACHINES,  # who holds each device in a cluster: epochs, expiries
    "nodelink": MACHINES,  # the HTTP/2 client end of a link between cloud nodes
    "httpclient": MACHINES,
    "httpheaders": CODECS,
    "query.pullpoint": MACHINES,
    "rtsp": MACHINES,  # the package face re-exports the gateway session
    "rtsp.gateway": MACHINES,  # one player's session at the cloud's RTSP gateway
    "adaption": SERVICES,
    "query.client": SERVICES,
    # old paths of moved modules (each calls _moved.alias): the layer of the new home
    "tls": ADAPTERS,
    "certs": ADAPTERS,
    "store": ADAPTERS,
    "cli": APPLICATIONS,
    "demo": APPLICATIONS,
    "querycli": APPLICATIONS,
    "simulate": APPLICATIONS,
}

IO = {"socket", "ssl", "asyncio", "threading", "time", "random", "os", "subprocess",
      "selectors", "tempfile", "shutil"}
PROTOCOL = {"h2", "h11", "hpack", "hyperframe", "wsproto", "lxml"}


def _name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(PKG.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    if module in BY_MODULE:
        return BY_MODULE[module]
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        folder = ".".join(parts[:cut])
        if folder in BY_FOLDER:
            return BY_FOLDER[folder]
    return None


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(modules of ours, top-level external packages) that ``module`` imports."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    ours: set[str] = set()
    external: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "uplink62676":
                    ours.add(_resolve(alias.name.removeprefix("uplink62676").lstrip(".")))
                else:
                    external.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None
                if node.module.split(".")[0] != "uplink62676":
                    external.add(node.module.split(".")[0])
                    continue
                base = node.module.removeprefix("uplink62676").lstrip(".")
            else:
                parts = package.split(".") if package else []
                if node.level > 1:
                    parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}" if base else alias.name
                ours.add(candidate if candidate in MODULES else _resolve(base))
    ours.discard(module)
    return ours, external


def _resolve(name: str) -> str:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _label(module: str) -> str:
    return f"uplink62676.{module}" if module else "uplink62676"


@pytest.mark.parametrize("module", sorted(MODULES), ids=_label)
def test_every_module_has_a_layer(module: str) -> None:
    assert layer_of(module) is not None, f"{_label(module)} is in no layer: add it to the table"


@pytest.mark.parametrize("module", sorted(MODULES), ids=_label)
def test_imports_flow_downward(module: str) -> None:
    own = layer_of(module)
    assert own is not None
    ours, _ = _imports(module)
    upward = sorted(f"{_label(m)} ({NAMES[layer_of(m) or 0]})" for m in ours
                    if (layer_of(m) or 0) > own)
    assert not upward, f"{_label(module)} ({NAMES[own]}) imports from above: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES), ids=_label)
def test_no_io_below_the_adapters_and_no_protocol_parsing_above(module: str) -> None:
    own = layer_of(module)
    assert own is not None
    _, external = _imports(module)
    if own < ADAPTERS:
        assert not external & IO, f"{_label(module)} ({NAMES[own]}) does I/O: {sorted(external & IO)}"
    else:
        assert not external & PROTOCOL, (
            f"{_label(module)} ({NAMES[own]}) parses protocol itself: {sorted(external & PROTOCOL)}")


def test_no_import_cycles() -> None:
    graph = {m: _imports(m)[0] for m in MODULES}
    # Tarjan's strongly connected components; a component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(_label(m) for m in component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checks_see_a_violation(tmp_path: pathlib.Path) -> None:
    """The import reader finds upward, relative and absolute imports (the test can fail)."""
    ours, external = _imports("aio.device")
    assert "agent" in ours and "asyncio" in external
    assert layer_of("aio.device") == ADAPTERS and layer_of("query.filters.location") == CODECS


def _loaded_by(statement: str) -> set[str]:
    """Top-level modules a fresh interpreter loads for ``statement`` beyond its own start-up.

    ``-S``: no site processing, whose ``.pth`` hooks may load ``threading`` and the like
    before the statement and so hide it; the paths are added by hand instead.
    """
    src = str(PKG.parent)
    code = ("import sys, site; sys.path[:0] = [" + repr(src) + "]; "
            "sys.path += site.getsitepackages(); before = set(sys.modules); "
            + statement + "; print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_importing_the_package_loads_no_io() -> None:
    loaded = _loaded_by("import uplink62676")
    assert "uplink62676" in loaded
    bad = loaded & {"ssl", "_ssl", "socket", "asyncio", "threading", "selectors", "tempfile",
                    "subprocess", "logging"}
    assert not bad, f"import uplink62676 loads {sorted(bad)}"


def test_importing_the_threaded_adapter_loads_no_asyncio() -> None:
    loaded = _loaded_by("import uplink62676.threaded")
    assert "socket" in loaded or "threading" in loaded or "selectors" in loaded
    assert "asyncio" not in loaded, "import uplink62676.threaded loads asyncio"
