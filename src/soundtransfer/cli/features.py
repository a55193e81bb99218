"""``soundtransfer features``: compute (or resume, or just open) a dataset's feature store."""

from __future__ import annotations

import argparse
import time
from typing import Any

from soundtransfer.cli.common import add_dataset_args, open_store
from soundtransfer.features.options import BuildOptions

DEFAULT = BuildOptions()


def register(sub: Any) -> None:
    p = sub.add_parser(
        "features",
        help="compute every clip's 3-channel log-mel once (float16 memmap, resumable)",
        description="Computes the paper's 3-channel log-mel image of every clip into a "
        "memory-mapped float16 store keyed by the front-end settings and the files. Re-running "
        "does nothing; an interrupted run resumes; changed inputs give a new store. Under "
        "torchrun the processes share the rows of one store (on a shared file system).",
    )
    add_dataset_args(p)
    p.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda (front end on the GPU) or auto (cuda when present); under torchrun "
        "the ranks share the rows, each on its own device (cuda:LOCAL_RANK)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT.batch_size,
        help=f"clips per batch (default {DEFAULT.batch_size})",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=DEFAULT.workers,
        help=f"decoding threads, 0 to decode inline (default {DEFAULT.workers})",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from soundtransfer.distributed import distributed_session

    t0 = time.perf_counter()
    # Under torchrun (WORLD_SIZE > 1) this joins the process group: the ranks share the rows.
    with distributed_session(args.device) as info:
        build = BuildOptions(args.batch_size, str(info.device), args.workers)
        store = open_store(args, build, distributed=info.distributed)
    seconds = time.perf_counter() - t0
    if not info.is_main:
        return 0
    if store.computed == 0:
        status = f"up to date ({seconds:.1f} s)"
    else:
        status = f"computed {store.computed} clips in {seconds:.1f} s"
        status += f" ({store.computed / seconds:.1f} clips/s)"
    print(f"store: {store.dir}")
    print(f"clips: {len(store)}  shape: {tuple(store.images.shape)}  float16")
    print(f"folds: {list(store.table.folds)}  classes: {len(store.table.classes)}")
    if store.bad:
        print(f"bad clips left out: {len(store.bad)} (listed in {store.dir / 'bad.json'})")
    print(status)
    return 0
