"""Old import paths of what moved in 0.2 keep working, with a DeprecationWarning (CHANGELOG)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from uplink62676._moved import MOVED_MODULES, MOVED_NAMES, RENAMED


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


@pytest.mark.parametrize(("module", "old"), sorted(RENAMED))
def test_renamed_class_warns_and_is_the_new_class(module: str, old: str) -> None:
    """One naming scheme: ``XSettings`` configures a component (the old names warn)."""
    home = importlib.import_module(module)
    new = RENAMED[(module, old)]
    assert new.endswith("Settings")
    with pytest.warns(DeprecationWarning, match=new):
        assert getattr(home, old) is getattr(home, new)
    import uplink62676

    with pytest.warns(DeprecationWarning, match=new):
        assert getattr(uplink62676, old) is getattr(home, new)


@pytest.mark.parametrize("old", ["build_get_uplinks", "parse_get_uplinks_response",
                                 "build_set_uplink", "parse_delete_uplink_response"])
def test_old_uplink_client_functions_warn_and_still_work(old: str) -> None:
    import uplink62676
    from uplink62676.services import uplink_client

    with pytest.warns(DeprecationWarning, match="UplinkServiceClient"):
        function = getattr(uplink_client, old)
    with pytest.warns(DeprecationWarning, match="UplinkServiceClient"):
        assert callable(getattr(uplink62676, old))
    if old == "build_get_uplinks":
        assert function().body == uplink62676.UplinkServiceClient().get_uplinks().body
