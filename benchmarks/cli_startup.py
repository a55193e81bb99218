"""Command-line start-up: wall time of ``soundtransfer --help`` and friends, fresh processes.

Each command runs ``--runs`` times in a fresh interpreter (``python -m soundtransfer.cli.main
...``); the median wall time is printed beside ``python -c pass`` (the interpreter alone) and
the number of modules the command imported. Target: ``--help`` under 0.5 s, i.e. no torch,
torchvision or kornia before the arguments are parsed (tests/cli/test_startup.py guards the
imports; this script shows what they cost).

    .venv/bin/python benchmarks/cli_startup.py [--runs 7] [--src DIR]

``--src DIR`` puts another source tree first on ``PYTHONPATH`` (e.g. an older checkout's
``src`` to compare). Ends with one summary line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5
COMMANDS = (
    ("--help",),
    ("finetune", "--help"),
    ("predict", "--help"),
    ("finetune",),  # a usage error: exit code 2 before anything runs
)
COUNT = (
    "import sys; from soundtransfer.cli.main import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "print(len(sys.modules), 'torch' in sys.modules, file=sys.stderr)"
)


def _env(src: Path | None) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


def median_wall_s(argv: list[str], runs: int, env: dict[str, str]) -> float:
    """Median wall time of ``argv`` over ``runs`` fresh processes, seconds (output discarded)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def modules_imported(args: tuple[str, ...], env: dict[str, str]) -> tuple[int, bool]:
    """How many modules ``soundtransfer ARGS`` leaves in ``sys.modules``, and whether torch."""
    out = subprocess.run(
        [sys.executable, "-c", COUNT, *args], env=env, capture_output=True, text=True, check=False
    )
    count, torch = out.stderr.strip().splitlines()[-1].split()
    return int(count), torch == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="fresh processes per command")
    ap.add_argument("--src", type=Path, default=None, help="source tree put first on the path")
    args = ap.parse_args()
    env = _env(args.src)

    bare = median_wall_s([sys.executable, "-c", "pass"], args.runs, env)
    print(f"python -c pass: {bare:.3f} s (median of {args.runs})")
    help_s = bare
    for cmd in COMMANDS:
        wall = median_wall_s([sys.executable, "-m", "soundtransfer.cli.main", *cmd], args.runs, env)
        n, torch = modules_imported(cmd, env)
        print(
            f"soundtransfer {' '.join(cmd):<16} {wall:6.3f} s  (+{wall - bare:.3f} s over "
            f"the interpreter; {n} modules, torch {'imported' if torch else 'not imported'})"
        )
        if cmd == ("--help",):
            help_s = wall
    verdict = "meets" if help_s < TARGET_S else "misses"
    print(
        f"summary: soundtransfer --help {help_s:.3f} s median vs python -c pass {bare:.3f} s; "
        f"{verdict} the {TARGET_S} s target"
    )


if __name__ == "__main__":
    main()
