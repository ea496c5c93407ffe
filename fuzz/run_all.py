"""Run every ``fuzz/fuzz_*.py`` target for a bounded time; exit non-zero on a finding.

Usage: ``python fuzz/run_all.py [SECONDS_PER_TARGET]`` (default 15).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys


def main() -> int:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    here = pathlib.Path(__file__).resolve().parent
    failed = []
    for target in sorted(here.glob("fuzz_*.py")):
        print(f"fuzz: {target.name} for {seconds} s", flush=True)
        proc = subprocess.run(
            [
                sys.executable,
                str(target),
                f"-max_total_time={seconds}",
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        stats = [
            ln for ln in proc.stderr.splitlines() if ln.startswith("stat::number_of_executed_units")
        ]
        print(f"fuzz: {target.name} exit {proc.returncode} {' '.join(stats)}", flush=True)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], flush=True)
            failed.append(target.name)
    if failed:
        print(f"fuzz: findings in {', '.join(failed)}")
        return 1
    print("fuzz: no findings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
