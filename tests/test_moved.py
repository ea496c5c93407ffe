"""Old import paths of what moved in 0.2 keep working, with a DeprecationWarning (CHANGELOG)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from uplink62676._moved import MOVED_MODULES, MOVED_NAMES


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_old_module_path_warns_and_is_the_new_module(old: str) -> None:
    code = ("import warnings, sys, importlib; warnings.simplefilter('error'); "
            f"importlib.import_module({MOVED_MODULES[old]!r}); "
            "warnings.simplefilter('always'); "
            "w = warnings.catch_warnings(record=True); rec = w.__enter__(); "
            f"m = importlib.import_module({old!r}); "
            f"assert m is sys.modules[{MOVED_MODULES[old]!r}], m; "
            "assert [r for r in rec if r.category is DeprecationWarning "
            f"and {MOVED_MODULES[old]!r} in str(r.message)], rec")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("name", sorted(MOVED_NAMES))
def test_old_top_level_name_warns_and_resolves(name: str) -> None:
    import uplink62676

    with pytest.warns(DeprecationWarning, match=MOVED_NAMES[name]):
        value = getattr(uplink62676, name)
    assert value is getattr(importlib.import_module(MOVED_NAMES[name]), name)


def test_unknown_top_level_name_is_an_attribute_error() -> None:
    import uplink62676

    with pytest.raises(AttributeError, match="no_such_name"):
        _ = uplink62676.no_such_name  # type: ignore[attr-defined]
