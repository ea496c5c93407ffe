"""Shared driver for the atheris fuzz targets.

Each target module defines ``target(data: bytes) -> None`` that feeds
``data`` to one parser; only ``uplink62676.errors.UplinkError`` subclasses
may escape (they are caught here).  Any other exception is a finding and
makes the run fail.  Run one target with
``python fuzz/fuzz_<name>.py -max_total_time=20``; ``fuzz/run_all.py`` runs
them all, each for a bounded time.

Coverage guidance covers our own package: every target imports this module
before anything of uplink62676, so the import hook below instruments all of
it.  (Instrumenting every loaded module, dependencies included, cost about
45 s of start-up per target on a 2-core machine; this costs a few seconds.)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

import atheris

_HOOK = atheris.instrument_imports(include=["uplink62676"])
_HOOK.__enter__()

from uplink62676.errors import UplinkError  # noqa: E402  (after the hook, on purpose)


def guarded(target: Callable[[bytes], None]) -> Callable[[bytes], None]:
    def one(data: bytes) -> None:
        with contextlib.suppress(UplinkError):
            target(data)

    return one


def main(target: Callable[[bytes], None]) -> None:
    _HOOK.__exit__(None, None, None)
    atheris.Setup(sys.argv, guarded(target))
    atheris.Fuzz()
