"""Run every ``fuzz/fuzz_*.py`` target for a bounded time; exit non-zero on a finding.

Usage: ``python fuzz/run_all.py [SECONDS_PER_TARGET] [PARALLEL]`` (default 15 s, as many
targets at once as the machine has cores).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys


def _command(target: pathlib.Path, seconds: int) -> list[str]:
    return [sys.executable, str(target), f"-max_total_time={seconds}", "-rss_limit_mb=2048",
            "-print_final_stats=1"]


def main() -> int:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    parallel = int(sys.argv[2]) if len(sys.argv) > 2 else max(1, os.cpu_count() or 1)
    here = pathlib.Path(__file__).resolve().parent
    waiting = sorted(here.glob("fuzz_*.py"))
    running: list[tuple[pathlib.Path, subprocess.Popen[str]]] = []
    failed = []
    while waiting or running:
        while waiting and len(running) < parallel:
            target = waiting.pop(0)
            print(f"fuzz: {target.name} for {seconds} s", flush=True)
            running.append((target, subprocess.Popen(
                _command(target, seconds), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True)))
        target, proc = running.pop(0)
        _, err = proc.communicate(timeout=seconds + 120)
        stats = [ln for ln in err.splitlines() if ln.startswith("stat::number_of_executed_units")]
        print(f"fuzz: {target.name} exit {proc.returncode} {' '.join(stats)}", flush=True)
        if proc.returncode != 0:
            print(err[-4000:], flush=True)
            failed.append(target.name)
    if failed:
        print(f"fuzz: findings in {', '.join(failed)}")
        return 1
    print("fuzz: no findings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
