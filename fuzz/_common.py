"""Shared driver for the atheris fuzz targets.

Each target module defines ``test_one_input(data: bytes) -> None`` that feeds
``data`` to one parser and lets only ``uplink62676.errors.UplinkError``
subclasses escape (they are caught here).  Any other exception is a finding
and makes the run fail.  Run one target with
``python fuzz/fuzz_<name>.py -max_total_time=20``; ``fuzz/run_all.py`` runs
them all, each for a bounded time.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

from uplink62676.errors import UplinkError


def guarded(target: Callable[[bytes], None]) -> Callable[[bytes], None]:
    def one(data: bytes) -> None:
        with contextlib.suppress(UplinkError):
            target(data)

    return one


def main(target: Callable[[bytes], None]) -> None:
    import atheris

    # Coverage guidance for everything imported so far (our package and its
    # dependencies), so the fuzzer explores branches instead of guessing.
    atheris.instrument_all()
    atheris.Setup(sys.argv, guarded(target))
    atheris.Fuzz()
