"""The package's public face: every exported name resolves (lazily) to the object of its home
module, and what the package lists is what it exports."""

from __future__ import annotations

import importlib

import uplink62676


def test_every_exported_name_resolves_to_its_home_object() -> None:
    exports = uplink62676._EXPORTS
    assert set(uplink62676.__all__) - {"__version__"} == set(exports)
    for name, (module, attribute) in exports.items():
        home = importlib.import_module(module)
        expected = home if attribute is None else getattr(home, attribute)
        assert getattr(uplink62676, name) is expected, name
    assert set(uplink62676.__all__) <= set(dir(uplink62676))


def test_type_checking_imports_match_the_lazy_table() -> None:
    """The names a type checker sees (the TYPE_CHECKING block) are exactly the lazy ones."""
    import ast
    import pathlib

    tree = ast.parse(pathlib.Path(uplink62676.__file__).read_text())
    seen: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    for alias in stmt.names:
                        module = f"uplink62676.{stmt.module}" if stmt.module else (
                            f"uplink62676.{alias.name}")
                        seen[alias.asname or alias.name] = module
    assert {k: v[0] for k, v in uplink62676._EXPORTS.items()} == seen
