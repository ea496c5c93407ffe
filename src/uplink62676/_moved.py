"""Old import paths of modules and names that moved, kept working with a DeprecationWarning.

0.2 put what does I/O apart from the sans-I/O core (``io/``, ``app/``).  A
module left at its old path calls :func:`alias`; the package's ``__getattr__``
resolves the old top-level names through :data:`MOVED_NAMES`.  Both import
the new home by name and only when the old path is used, so importing the
sans-I/O package loads none of it.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Final

__all__ = [
    "MOVED_ATTRS",
    "MOVED_MODULES",
    "MOVED_NAMES",
    "RENAMED",
    "alias",
    "moved_attr",
    "moved_name",
    "renamed",
]

#: Old module path -> new module path.
MOVED_MODULES: Final = {
    "uplink62676.tls": "uplink62676.io.tls",
    "uplink62676.certs": "uplink62676.io.certs",
    "uplink62676.store": "uplink62676.io.store",
    "uplink62676.cli": "uplink62676.app.cli",
    "uplink62676.demo": "uplink62676.app.demo",
    "uplink62676.querycli": "uplink62676.app.querycli",
    "uplink62676.simulate": "uplink62676.app.simulate",
}

#: Names once exported by ``uplink62676`` itself -> the module that has them now.
MOVED_NAMES: Final = {
    "ConfigStore": "uplink62676.io.store",
    "check_alpn": "uplink62676.io.tls",
    "cloud_tls_context": "uplink62676.io.tls",
    "describe_tls_error": "uplink62676.io.tls",
    "device_tls_context": "uplink62676.io.tls",
    "peer_common_name": "uplink62676.io.tls",
}

#: Names that left a module for another: (old module, name) -> new module.
MOVED_ATTRS: Final = {
    ("uplink62676.tokens", "TokenMapper"): "uplink62676.tokenmap",
    ("uplink62676.tokens", "LocalRef"): "uplink62676.tokenmap",
    ("uplink62676.tokens", "MappingStore"): "uplink62676.tokenmap",
}

#: Classes renamed to the one scheme (``XSettings`` configures a component X;
#: ``UplinkConfiguration`` stays the ONVIF data type): (module, old name) -> new name.
RENAMED: Final = {
    ("uplink62676.settings", "FloodLimits"): "FloodSettings",
    ("uplink62676.websocket", "WebSocketLimits"): "WebSocketSettings",
    ("uplink62676.query.pullpoint", "PullPointConfig"): "PullPointSettings",
    ("uplink62676.services.events", "EventServiceConfig"): "EventServiceSettings",
    ("uplink62676.oauth", "AuthorizationServerConfig"): "AuthorizationServerSettings",
}


def alias(old: str) -> None:
    """Make module ``old`` (being imported) the module it moved to, with a warning."""
    new = MOVED_MODULES[old]
    warnings.warn(f"{old} moved to {new}; the old path will be removed in 0.3",
                  DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)


def moved_name(name: str) -> object:
    """The object an old top-level name stands for now, with a warning."""
    new = MOVED_NAMES[name]
    warnings.warn(f"uplink62676.{name} moved to {new}.{name} (it does I/O; the top-level "
                  f"package is sans-I/O); the old name will be removed in 0.3",
                  DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(new), name)


def renamed(module: str, name: str) -> object:
    """Module ``__getattr__`` helper: the class an old name stands for, with a warning."""
    new = RENAMED.get((module, name))
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"{module}.{name} is now {module}.{new}; the old name will be removed in 0.3",
                  DeprecationWarning, stacklevel=3)
    return getattr(sys.modules[module], new)


def moved_attr(module: str, name: str) -> object:
    """Module ``__getattr__`` helper: a name that moved to another module, with a warning."""
    new = MOVED_ATTRS.get((module, name))
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"{module}.{name} moved to {new}.{name}; the old path will be removed in 0.3",
                  DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(new), name)
