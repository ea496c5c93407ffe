"""Pages and diagrams generated from the code at build time, so they cannot drift.

* ``_generated/device-phases.dot`` / ``cloud-phases.dot``: the uplink handshake
  from :data:`uplink62676.uplink.DEVICE_TRANSITIONS` / ``CLOUD_TRANSITIONS``;
* ``_generated/status.dot``: an uplink's Status, the device table collapsed
  through :data:`PHASE_STATUS` (plus the agent's next attempt);
* ``_generated/cli-reference.rst``: every command and option of
  ``uplink62676.app.cli._parser()``;
* ``_generated/conformance.rst``: every requirement ID cited in ``tests/``,
  its statement from ``docs/requirements.csv`` and the tests citing it.
"""

from __future__ import annotations

import argparse
import ast
import csv
import pathlib
import re
from collections import defaultdict
from typing import Any

DOCS = pathlib.Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
OUT = DOCS / "_generated"
REQUIREMENT = re.compile(r"\b(?:UPL|CFG|TOK|RQ|EVT|DEV|MED)-R?\d+[a-z]?\b")


def _write(name: str, text: str) -> None:
    OUT.mkdir(exist_ok=True)
    path = OUT / name
    if not path.exists() or path.read_text() != text:  # unchanged files keep Sphinx quiet
        path.write_text(text)


def _dot(name: str, edges: list[tuple[str, str, str]], start: str) -> str:
    lines = [f'digraph "{name}" {{', "  rankdir=LR;", '  node [shape=box, style=rounded];',
             '  start [shape=point];', f'  start -> "{start}";']
    for src, dst, label in edges:
        lines.append(f'  "{src}" -> "{dst}" [label="{label}"];')
    return "\n".join(lines) + "\n}\n"


def state_diagrams() -> None:
    from uplink62676.status import Status
    from uplink62676.uplink import CLOUD_TRANSITIONS, DEVICE_TRANSITIONS, PHASE_STATUS, Phase

    for end, table, first in (("device", DEVICE_TRANSITIONS, Phase.IDLE),
                              ("cloud", CLOUD_TRANSITIONS, Phase.UPGRADING)):
        merged: dict[tuple[str, str], list[str]] = defaultdict(list)
        for (src, trigger), dst in table.items():
            merged[(src.value, dst.value)].append(trigger.value)
        edges = [(s, d, "\\n".join(t)) for (s, d), t in merged.items()]
        _write(f"{end}-phases.dot", _dot(f"{end} uplink phases", edges, first.value))
    status: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (src, trigger), dst in DEVICE_TRANSITIONS.items():
        a, b = PHASE_STATUS[src].value, PHASE_STATUS[dst].value
        if a != b:
            status[(a, b)].append(trigger.value)
    status[(Status.OFFLINE.value, Status.CONNECTING.value)].append("next attempt (schedule)")
    edges = [(s, d, "\\n".join(sorted(set(t)))) for (s, d), t in status.items()]
    _write("status.dot", _dot("uplink Status", edges, Status.OFFLINE.value))


def _options(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        names = ", ".join(action.option_strings) or (action.metavar or action.dest)
        if action.option_strings and action.nargs != 0:
            names += f" {action.metavar or action.dest.upper()}"
        text = (action.help or "").replace("%(default)s", str(action.default))
        rows.append(f"``{names}``\n    {text or '(no help text)'}\n")
    return rows


def cli_reference() -> None:
    from uplink62676.app.cli import _parser

    parser = _parser()
    out = ["Command line reference", "======================", "",
           "Generated from the argument parser when the documentation is built.", "",
           "Global options", "--------------", "", *_options(parser), ""]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, child in sub.choices.items():
        title = f"uplink62676 {name}"
        out += [title, "-" * len(title), "", (child.description or "").strip(), "",
                *_options(child), ""]
    if parser.epilog:
        out += [parser.epilog, ""]
    _write("cli-reference.rst", "\n".join(out))


def _tests_citing() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text())
        module_ids = set(REQUIREMENT.findall(ast.get_docstring(tree) or ""))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and \
                    node.name.startswith("test"):
                source = ast.get_source_segment(path.read_text(), node) or ""
                for rid in set(REQUIREMENT.findall(source)) | module_ids:
                    found[rid].add(f"{path.stem}::{node.name}")
    return found


def _key(rid: str) -> tuple[str, int, int, str]:
    m = re.match(r"([A-Z]+)-(R?)(\d+)([a-z]?)", rid)
    assert m is not None
    return m.group(1), 1 if m.group(2) else 0, int(m.group(3)), m.group(4)


def conformance() -> None:
    with (DOCS / "requirements.csv").open(newline="") as handle:
        statements = {row["id"]: row["statement"] for row in csv.DictReader(handle)}
    cited = _tests_citing()
    written = sum(1 for rid in cited if rid in statements)
    out = ["Conformance: what the tests check", "=================================", "",
           f"Generated from ``tests/`` when the documentation is built: {len(cited)} "
           "requirement IDs of IEC 62676-2-33 (ONVIF Uplink, Resource Query, Core and Media "
           "parts) are cited by tests.  The statements are one-line paraphrases of our own "
           "(``docs/requirements.csv``)"
           + (f"; {written} of {len(cited)} are written so far." if written < len(cited)
              else "; every cited ID has one."), "",
           ".. list-table::", "   :header-rows: 1", "   :widths: 10 45 45", "",
           "   * - ID", "     - statement (our words)", "     - tests"]
    for rid in sorted(cited, key=_key):
        tests = ", ".join(f"``{t}``" for t in sorted(cited[rid]))
        text = statements.get(rid, "*(statement not yet written)*")
        out += [f"   * - {rid}", f"     - {text}", f"     - {tests}"]
    _write("conformance.rst", "\n".join(out) + "\n")


def generate(app: Any) -> None:
    state_diagrams()
    cli_reference()
    conformance()


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "version": "1"}
