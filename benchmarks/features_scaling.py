"""Feature store build time against the number of torchrun ranks, on the same cores.

Builds the store of the same ESC-10 clips (``--clips``, spread over the 400) from scratch with
``torchrun --nproc-per-node R -m soundtransfer.cli.main features ...`` for each R in
``--ranks``, every build with ``--cores`` CPU cores in all: R processes of ``cores / R``
worker threads each (``OMP_NUM_THREADS=1``), so 1x2 and 2x1 use the same 2 cores and the ratio
shows the cost or gain of sharding itself (start-up, process group, per-rank model, merging).
Beyond one machine, rows scale with ranks as long as the shared file system keeps up (see
the README's "Scaling out"). Each build is timed by the CLI (rank 0: from before the process
group to the finished store, imports excluded) and end to end (the whole torchrun command).

    .venv/bin/python benchmarks/features_scaling.py [--clips 160] [--ranks 1,2] [--cores 2]
        [--device cpu|cuda]

With ``--device cuda`` each rank computes on its own GPU (cuda:LOCAL_RANK). Data:
../shared/data/esc10 (see its README). Ends with one summary line.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _bench import require_esc10

REPO = Path(__file__).resolve().parents[1]


def subset_root(esc10: Path, n: int, dest: Path) -> Path:
    """``dest``: an ESC-10 root of ``n`` clips spread over the 400 (metadata cut, audio linked)."""
    lines = (esc10 / "meta" / "esc50.csv").read_text().splitlines()
    rows = [r for r in lines[1:] if ",True," in r]  # the ESC-10 rows
    keep = [rows[k] for k in np.linspace(0, len(rows) - 1, min(n, len(rows))).round().astype(int)]
    (dest / "meta").mkdir(parents=True)
    (dest / "audio").mkdir()
    (dest / "meta" / "esc50.csv").write_text("\n".join([lines[0], *keep]) + "\n")
    for r in keep:
        name = r.split(",")[0]
        (dest / "audio" / name).symlink_to(esc10 / "audio" / name)
    return dest


def build(root: Path, cache: Path, ranks: int, cores: int, device: str) -> dict[str, float]:
    """One build from scratch with ``ranks`` processes; its clips/s (CLI) and wall seconds."""
    workers = max(1, cores // ranks)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(ranks), "-m", "soundtransfer.cli.main",
        "features", "esc10", "--root", str(root), "--cache", str(cache), "--quiet",
        "--workers", str(workers), "--device", device,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    found = re.search(r"computed (\d+) clips in ([\d.]+) s", done.stdout)
    if found is None:
        raise SystemExit(f"no 'computed ... clips' line in:\n{done.stdout}")
    clips, seconds = int(found[1]), float(found[2])
    return {"clips": clips, "seconds": seconds, "rate": clips / seconds, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=160, help="ESC-10 clips (default 160)")
    parser.add_argument("--ranks", default="1,2", help="rank counts to compare (default 1,2)")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores in all (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (one GPU per rank)")
    args = parser.parse_args()
    esc10 = require_esc10()
    counts = [int(r) for r in args.ranks.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = subset_root(esc10, args.clips, Path(tmp) / "esc10")
        for r in counts:
            res = build(root, Path(tmp) / f"cache{r}", r, args.cores, args.device)
            results[r] = res
            print(
                f"ranks {r} x workers {max(1, args.cores // r)}: {res['clips']} clips in "
                f"{res['seconds']:.1f} s = {res['rate']:.1f} clips/s "
                f"(whole torchrun command {res['wall']:.1f} s)"
            )
    base = results[counts[0]]["rate"]
    ratios = ", ".join(f"{r} ranks {results[r]['rate'] / base:.2f}x" for r in counts[1:])
    print(
        f"summary: {args.clips} clips, {args.cores} cores, {args.device}: "
        f"{counts[0]} rank(s) {base:.1f} clips/s; {ratios or 'no other rank count'}"
    )


if __name__ == "__main__":
    main()
