"""The run directory: its layout, its identity, and whether a run is new, resumable or done.

Layout (one directory per held-out split)::

    <out>/<dataset>/<arch>.<weights>/<mode>/<split>/
        config.json    the resolved settings and the run's identity (written first)
        metrics.jsonl  one JSON object per epoch
        last.pt        resume state (every epoch, atomically); best.pt with select=best_val
        final.json     the result; its presence marks the run done
        model.pt       the model bundle

A run's identity is what produced it: the settings that change its numbers, the weights'
fingerprint, the feature store's key and the split. :func:`open_run` records it in
``config.json`` when the run starts. Once the directory holds results (``metrics.jsonl``,
``last.pt``, ``best.pt``, ``final.json``, ``model.pt`` or ``tensorboard/``: the first epoch's
are written with its checkpoint) the recorded identity is binding: the same identity reuses a
finished run or resumes an unfinished one; a different identity is a :class:`RunError` naming
the differences (choose another ``--out`` or delete the directory). Results are never
silently reused, resumed or overwritten. Before that, a run that stopped after writing
``config.json`` (weights not yet fetched, a bad setting found late, Ctrl-C during the first
epoch) left nothing to protect: the next start records its own identity over it, so fixing
the cause and rerunning the same command works.

Run files are read back through :mod:`soundtransfer.runs.records` (a damaged file is a
:class:`RunError` naming it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from soundtransfer import distributed as D
from soundtransfer.config import save_json
from soundtransfer.errors import RunError
from soundtransfer.runs.records import read_config, read_final

__all__ = [
    "BEST",
    "CONFIG",
    "FINAL",
    "LAST",
    "METRICS",
    "MODEL",
    "RESULTS",
    "RunRef",
    "RunStatus",
    "cell_dir",
    "describe_changes",
    "discard_unstarted",
    "list_runs",
    "open_run",
    "parse_run_dir",
    "run_dir",
    "split_order",
]

CONFIG, METRICS, LAST, BEST, FINAL, MODEL = (
    "config.json",
    "metrics.jsonl",
    "last.pt",
    "best.pt",
    "final.json",
    "model.pt",
)
# What a run has produced: once one of these exists, the recorded identity is binding.
RESULTS = (METRICS, LAST, BEST, FINAL, MODEL, "tensorboard")


def cell_dir(out_dir: Path, dataset: str, weights_label: str, mode: str) -> Path:
    """``out_dir/<dataset>/<weights_label>/<mode>``: the runs of one cell, one per split
    (``weights_label``: ``<arch>.<weights>``, see
    :attr:`soundtransfer.weights.ResolvedWeights.label`)."""
    return Path(out_dir) / dataset / weights_label / mode


def run_dir(out_dir: Path, dataset: str, weights_label: str, mode: str, split: str) -> Path:
    """``out_dir/<dataset>/<weights_label>/<mode>/<split>``: one run."""
    return cell_dir(out_dir, dataset, weights_label, mode) / split


@dataclass(frozen=True)
class RunRef:
    """A run directory parsed back into its parts."""

    dataset: str
    weights: str  # "<arch>.<weights>"
    mode: str
    split: str
    dir: Path

    @property
    def done(self) -> bool:
        return (self.dir / FINAL).exists()

    def final(self) -> dict[str, Any]:
        """The contents of ``final.json``, checked (:func:`~soundtransfer.runs.records.
        read_final`; a damaged file is a :class:`RunError` naming it)."""
        return read_final(self.dir / FINAL)


def parse_run_dir(path: Path) -> RunRef:
    """The parts of ``<out>/<dataset>/<weights>/<mode>/<split>``."""
    p = Path(path)
    return RunRef(p.parent.parent.parent.name, p.parent.parent.name, p.parent.name, p.name, p)


def split_order(name: str) -> tuple[int, str]:
    """Sort key putting ``fold2`` before ``fold10``."""
    return (len(name), name)


def list_runs(out_dir: Path, *, done_only: bool = False) -> list[RunRef]:
    """Every run directory under ``out_dir`` (one holding ``config.json``, ``metrics.jsonl``
    or ``final.json``), in (dataset, weights, mode, split) order, folds in numeric order."""
    found = (Path(out_dir).glob(f"*/*/*/*/{name}") for name in (CONFIG, METRICS, FINAL))
    refs = [parse_run_dir(d) for d in {p.parent for paths in found for p in paths}]
    if done_only:
        refs = [r for r in refs if r.done]
    return sorted(refs, key=lambda r: (r.dataset, r.weights, r.mode, split_order(r.split)))


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): obj}


def describe_changes(old: dict[str, Any], new: dict[str, Any], limit: int = 6) -> str:
    """``"settings.lr: 0.0001 -> 0.01, store: 'ab..' -> 'cd..'"``: the differing keys, or ''."""
    a, b = _flatten(json.loads(json.dumps(old))), _flatten(json.loads(json.dumps(new)))
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    parts = [f"{k}: {a.get(k, '(none)')!r} -> {b.get(k, '(none)')!r}" for k in keys[:limit]]
    if len(keys) > limit:
        parts.append(f"... {len(keys) - limit} more")
    return ", ".join(parts)


@dataclass(frozen=True)
class RunStatus:
    """What :func:`open_run` found.

    Attributes:
        dir: the run directory.
        state: ``new`` (start from scratch), ``resume`` (``last.pt`` of the same identity) or
            ``done`` (``final.json`` of the same identity).
    """

    dir: Path
    state: Literal["new", "resume", "done"]

    def final(self) -> dict[str, Any]:
        """The contents of ``final.json``, checked (as :meth:`RunRef.final`)."""
        return read_final(self.dir / FINAL)


def open_run(path: Path, identity: dict[str, Any], header: dict[str, Any]) -> RunStatus:
    """Check ``path`` against ``identity`` and record the run in ``config.json``.

    The recorded identity binds only once the directory holds results (:data:`RESULTS`); a
    ``config.json`` alone (a run that stopped before its first epoch was saved) is replaced.

    Args:
        path: the run directory (created).
        identity: JSON-ready description of what produces the run's numbers.
        header: everything else worth recording (world size, device, torch version ...),
            written to ``config.json`` with the identity (rank 0) unless the run is done.

    Returns:
        The state: ``done`` and ``resume`` only with the same identity.

    Raises:
        RunError: the directory holds results of another identity (the differences named),
            results without a recorded identity, or a damaged ``config.json`` beside results.
    """
    path = Path(path)
    config = path / CONFIG
    has_results = any((path / name).exists() for name in RESULTS)
    if has_results and config.exists():
        try:
            recorded = read_config(config).get("identity")
        except RunError as exc:
            raise RunError(f"{exc}; choose another --out or delete the run directory") from None
        if recorded is None:
            raise RunError(
                f"{path} holds a run without a recorded identity (an older version); "
                "choose another --out or delete it"
            )
        changes = describe_changes(recorded, identity)
        if changes:
            raise RunError(
                f"{path} holds a run of other settings or data ({changes}); "
                "choose another --out or delete it"
            )
    elif has_results:
        raise RunError(f"{path} holds run files but no {CONFIG}; choose another --out or delete it")
    if (path / FINAL).exists():
        return RunStatus(path, "done")
    state: Literal["new", "resume"] = "resume" if (path / LAST).exists() else "new"
    if D.is_main():
        created = next((p for p in reversed((path, *path.parents)) if not p.exists()), None)
        save_json(config, {**header, "identity": identity})
        _STARTED.append((path, created or path))
    D.barrier()
    return RunStatus(path, state)


# Run directories this process recorded with open_run, and the first folder it created for
# each (the run directory itself when it existed): what discard_unstarted may take back.
_STARTED: list[tuple[Path, Path]] = []


def discard_unstarted() -> list[Path]:
    """Take back what :func:`open_run` wrote in this process for runs that produced no
    results: their ``config.json`` and the folders created for them, when empty.

    Called when a command fails (``soundtransfer``'s error handler), so a run stopped before
    its first results (weights missing, a bad file found late, Ctrl-C in the first epoch)
    leaves nothing behind; a run with results is never touched. (A process killed outright
    leaves the ``config.json``, which the next start replaces: see the module docstring.)

    Returns:
        The run directories cleaned.
    """
    cleaned = []
    while _STARTED:
        path, created = _STARTED.pop()
        if any((path / name).exists() for name in RESULTS):
            continue
        (path / CONFIG).unlink(missing_ok=True)
        for folder in (path, *path.parents):
            if folder != created and created not in folder.parents:
                break
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break
        cleaned.append(path)
    return cleaned
