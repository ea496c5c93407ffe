"""The documentation can be trusted: public names documented, samples checked, tables honest."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pathlib
import re
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "src" / "uplink62676"
DOCS = ROOT / "docs"

#: Old paths that only warn and forward (docs/architecture.rst "Moved in 0.2").
MOVED = {"uplink62676.tls", "uplink62676.certs", "uplink62676.store", "uplink62676.cli",
         "uplink62676.demo", "uplink62676.querycli", "uplink62676.simulate"}


def _public_modules() -> list[str]:
    names = []
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if any(p.startswith("_") for p in parts[1:]):
            continue
        name = ".".join(parts)
        if name not in MOVED:
            names.append(name)
    return names


def _public_members(cls: type) -> list[tuple[str, object]]:
    """The methods and properties of ``cls`` that the docstring rule covers (see below)."""
    out = []
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        owner = next((o for o in cls.__mro__ if name in vars(o)), None)
        if owner is None or not owner.__module__.startswith("uplink62676"):
            continue
        raw = vars(owner)[name]
        if isinstance(raw, staticmethod | classmethod):
            raw = raw.__func__
        if isinstance(raw, property) or inspect.isfunction(raw):
            out.append((name, raw))
    return out


@pytest.mark.parametrize("module", _public_modules())
def test_every_public_name_has_a_docstring(module: str) -> None:
    """Every class and function in a public module's ``__all__`` has a docstring, and so has
    every public method and property of those classes: each name without a leading
    underscore (so no dunder methods; a class's docstring explains its constructor) that
    is defined in this package, also when inherited from one of our base classes, private
    ones included.  A member may inherit the docstring of the member it overrides
    (:func:`inspect.getdoc`); members of the standard library or other packages are not
    checked."""
    mod = importlib.import_module(module)
    missing = []
    for name in getattr(mod, "__all__", ()):
        obj = getattr(mod, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and obj.__module__.startswith("uplink62676"):
            for member, raw in _public_members(obj):
                doc = raw.__doc__ if isinstance(raw, property) else inspect.getdoc(
                    getattr(obj, member))
                if not (doc or "").strip():
                    missing.append(f"{name}.{member}")
    assert not missing, f"{module}: no docstring on {missing}"


def _rst_files() -> list[pathlib.Path]:
    return sorted(p for p in DOCS.rglob("*.rst") if "_generated" not in p.parts)


@pytest.mark.parametrize("path", _rst_files(), ids=lambda p: p.name)
def test_doctests_in_the_docs_pass(path: pathlib.Path) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    result = doctest.testfile(str(path), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


_BLOCK = re.compile(r"^\.\. code-block:: (\w+)|::\n\n {4}(?!>>>)", re.MULTILINE)


@pytest.mark.parametrize("path", _rst_files(), ids=lambda p: p.name)
def test_code_in_the_docs_is_included_or_a_doctest(path: pathlib.Path) -> None:
    """Every sample is a ``literalinclude`` of a file CI runs, or a ``>>>`` doctest;
    ``text`` blocks (diagrams, tables) are not code."""
    text = path.read_text()
    for target in re.findall(r"^\.\. literalinclude:: (\S+)", text, re.MULTILINE):
        assert (path.parent / target).is_file(), f"{path.name} includes a missing {target}"
    blocks = [m.group(0).strip() for m in _BLOCK.finditer(text)
              if m.group(1) not in ("text", "console") and not text[:m.start()].rstrip().endswith(
                  ("list-table::", "toctree::"))]
    assert not blocks, f"{path.name}: unchecked code blocks {blocks}"


def test_phase_status_is_what_a_device_uplink_reports() -> None:
    from uplink62676 import DeviceUplink
    from uplink62676.uplink import PHASE_STATUS

    uplink = DeviceUplink("https://cloud.example/uplink")
    assert uplink.status is PHASE_STATUS[uplink.phase]
    uplink.start(0.0)
    assert uplink.status is PHASE_STATUS[uplink.phase]
    uplink.connection_lost(1.0, "gone")
    assert uplink.status is PHASE_STATUS[uplink.phase]


def test_requirements_table_is_well_formed() -> None:
    import csv

    with (DOCS / "requirements.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    for row in rows:
        assert re.fullmatch(r"(UPL|CFG|TOK|RQ|EVT|DEV|MED)-R?\d+[a-z]?", row["id"]), row
        assert row["statement"].strip() and "\n" not in row["statement"], row
        assert len(row["statement"]) <= 120, row


def _uplinkdocs() -> types.ModuleType:
    """The documentation extension, imported from ``docs/_ext``."""
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import uplinkdocs
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    return uplinkdocs


def test_every_cited_requirement_has_a_statement() -> None:
    """Each ID the tests cite (found exactly as the conformance page finds them) has a line in
    ``docs/requirements.csv``, and the file is sorted: prefixes in the order of the extension's
    pattern (UPL, CFG, TOK, RQ, EVT, DEV, MED), numbered rules before ``-R`` recommendations,
    then by number."""
    import csv

    docs = _uplinkdocs()
    with (DOCS / "requirements.csv").open(newline="") as handle:
        ids = [row["id"] for row in csv.DictReader(handle)]
    missing = sorted(set(docs._tests_citing()) - set(ids), key=docs._key)
    assert not missing, f"requirement IDs cited by tests without a statement: {missing}"
    prefixes = re.search(r"\(\?:([A-Z|]+)\)", docs.REQUIREMENT.pattern)
    assert prefixes is not None
    order = prefixes.group(1).split("|")

    def key(rid: str) -> tuple[int, int, int, str]:
        prefix, rec, number, suffix = docs._key(rid)
        return order.index(prefix), rec, number, suffix

    assert ids == sorted(ids, key=key), "docs/requirements.csv is not sorted"


def _console_commands(text: str) -> list[str]:
    """The ``$ ...`` command lines of the page's ``console`` blocks, continuations joined."""
    commands: list[str] = []
    for block in re.split(r"^\.\. code-block:: console\n", text, flags=re.MULTILINE)[1:]:
        lines = []
        for line in block.splitlines()[1:]:
            if line and not line.startswith(" "):
                break  # the block ended
            lines.append(line.strip())
        joined = "\n".join(lines).replace("\\\n", " ")
        commands += [ln[2:] for ln in joined.splitlines() if ln.startswith("$ ")]
    return commands


@pytest.mark.parametrize("path", _rst_files(), ids=lambda p: p.name)
def test_console_samples_parse_with_the_real_parser(path: pathlib.Path) -> None:
    """``console`` blocks show command lines; every ``uplink62676 ...`` one must parse with
    the real argument parser, so an option renamed or removed breaks this test, not a
    reader's paste.  (Lines of other tools -- ffmpeg, curl -- show their own syntax.)"""
    import shlex

    from uplink62676.app.cli import _parser

    for command in _console_commands(path.read_text()):
        argv = shlex.split(command)
        if not argv or argv[0] != "uplink62676":
            continue
        try:
            _parser().parse_args(argv[1:])
        except SystemExit as exc:  # argparse's way of refusing
            raise AssertionError(f"{path.name}: {command!r} does not parse") from exc
