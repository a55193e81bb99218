"""Build the multi-label benchmark's data: mixtures of 1-3 real ESC-10 clips at random gains.

Each mixture sums 1 to ``--max-sources`` clips of *different* classes, each brought to the
same active level (RMS of its 50 ms frames within 30 dB of its loudest, ``--level-dbfs``),
then given a random gain (uniform in ``--gain-db``, rounded to 0.01 dB) and a random start
(a clip shorter than the mixture starts anywhere it fits; a longer one is cut to the
mixture's length from its start); the sum is scaled down only if it would clip. Its labels
are the classes of its sources.

Splits never share audio: train mixtures draw on ESC-10 folds ``--train-folds`` (default
1-3), valid on ``--valid-folds`` (4), test on ``--test-folds`` (5). ESC-10 keeps every source
recording (``src_file``) in one fold, and the builder checks that no recording is in two
splits. Within a split, the recordings of each class are dealt whole, round-robin from the
first pool, to *pools* (about ``--pool-clips`` clips per class per pool; a class with fewer
recordings than pools reaches only the first ones), and every mixture draws all its sources
from one pool, which is its ``group``: mixtures sharing a source always share a group, so
grouped folds or inner cross-validation on the train split cannot leak a clip either. A
mixture's classes are drawn first, uniformly, then a pool holding all of them.

Writes, under ``--out`` (which must be new or empty):

- ``audio/<split>/<split>-NNNN.flac`` (16-bit, the ESC-10 rate, ``--seconds`` long);
- ``mixtures.csv``: ``file`` (relative to the CSV), ``labels`` (class names joined by ``;``),
  ``split`` (train / valid / test), ``group``, and for checking, ``sources`` (ESC-10 files
  joined by ``;``), ``gains_db``, ``offsets_s`` (where each source starts in the mixture),
  ``scale`` (the anti-clipping factor);
- ``build.json``: the settings, the counts per split and class, the labels per mixture.

Usage::

    PYTHONPATH=src python benchmarks/multilabel/build_mixtures.py --out /tmp/mixtures \\
        [--data ../shared/data/esc10] [--seed 0] [--train 480 --valid 160 --test 320]

Bad settings or an output folder that is not empty: one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from soundtransfer.audio.io import load_clip
from soundtransfer.datasets import load_dataset
from soundtransfer.errors import ConfigError, DatasetError, OutputError, SoundTransferError
from soundtransfer.runs.files import atomic_write, atomic_write_text

DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "esc10").resolve()
SPLITS = ("train", "valid", "test")
COLUMNS = ("file", "labels", "split", "group", "sources", "gains_db", "offsets_s", "scale")
FRAME_S = 0.05  # active-level frames
ACTIVE_DB = 30.0  # frames within this of the loudest count as active
PEAK = 0.99  # the mixture is scaled down to this peak if it would clip


@dataclass(frozen=True)
class MixSettings:
    """What to build (see the module docstring)."""

    seed: int = 0
    train: int = 480
    valid: int = 160
    test: int = 320
    train_folds: tuple[int, ...] = (1, 2, 3)
    valid_folds: tuple[int, ...] = (4,)
    test_folds: tuple[int, ...] = (5,)
    max_sources: int = 3
    gain_db: tuple[float, float] = (-12.0, 0.0)
    level_dbfs: float = -20.0
    seconds: float = 5.0
    pool_clips: int = 2

    def __post_init__(self) -> None:
        for name in ("train", "valid", "test", "pool_clips"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if not 1 <= self.max_sources <= 10:
            raise ConfigError(f"--max-sources {self.max_sources}: must be 1..10 (ESC-10 classes)")
        lo, hi = self.gain_db
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi <= 0):
            raise ConfigError(f"--gain-db {lo:g},{hi:g}: need finite low <= high <= 0")
        if not (0 < self.seconds <= 30 and -60 <= self.level_dbfs < 0):
            raise ConfigError("--seconds must be in (0, 30] and --level-dbfs in [-60, 0)")
        folds = [self.train_folds, self.valid_folds, self.test_folds]
        flat = [k for f in folds for k in f]
        if not all(folds) or len(set(flat)) != len(flat) or not set(flat) <= {1, 2, 3, 4, 5}:
            raise ConfigError("--train/valid/test-folds: disjoint, non-empty sets of 1..5")

    def count(self, split: str) -> int:
        return int(getattr(self, split))

    def folds(self, split: str) -> tuple[int, ...]:
        return tuple(getattr(self, f"{split}_folds"))


@dataclass(frozen=True)
class Source:
    """One ESC-10 clip: its file (relative to the data root), class, recording, fold."""

    file: str
    label: str
    recording: str
    fold: int


@dataclass(frozen=True)
class Mixture:
    """One planned mixture (all that is needed to render it again)."""

    file: str
    split: str
    group: str
    sources: tuple[Source, ...]
    gains_db: tuple[float, ...]
    starts: tuple[float, ...]  # where each source starts: a fraction of the room it leaves

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted(s.label for s in self.sources))


def esc10_sources(root: Path) -> list[Source]:
    """Every ESC-10 clip under ``root`` (official layout), in metadata order."""
    table = load_dataset("esc10", root)
    return [Source(c.file, table.classes[c.label], c.group, c.fold) for c in table.clips]


def split_sources(sources: Sequence[Source], settings: MixSettings) -> dict[str, list[Source]]:
    """The clips of each split's folds; no recording may be in two splits.

    Raises:
        DatasetError: a recording in two splits (naming it).
    """
    parts = {s: [x for x in sources if x.fold in settings.folds(s)] for s in SPLITS}
    owner: dict[str, str] = {}
    for split, clips in parts.items():
        for x in clips:
            if owner.setdefault(x.recording, split) != split:
                raise DatasetError(
                    f"recording {x.recording} ({x.file}) is in the {owner[x.recording]} and "
                    f"{split} splits: mixtures would share audio across splits"
                )
    return parts


def make_pools(
    clips: Sequence[Source], pool_clips: int, rng: np.random.Generator
) -> list[list[Source]]:
    """Deal each class's recordings (whole) round-robin to pools of about ``pool_clips``
    clips per class; pools = the fewest clips of a class // ``pool_clips`` (at least 1)."""
    by_class: dict[str, dict[str, list[Source]]] = {}
    for x in clips:
        by_class.setdefault(x.label, {}).setdefault(x.recording, []).append(x)
    fewest = min(sum(len(v) for v in recs.values()) for recs in by_class.values())
    n_pools = max(1, fewest // pool_clips)
    pools: list[list[Source]] = [[] for _ in range(n_pools)]
    for label in sorted(by_class):
        recordings = sorted(by_class[label])
        for i, j in enumerate(rng.permutation(len(recordings))):
            pools[i % n_pools] += by_class[label][recordings[j]]
    return pools


def plan_split(
    split: str, clips: Sequence[Source], settings: MixSettings, rng: np.random.Generator
) -> list[Mixture]:
    """The mixtures of one split (which clips, gains and starts), drawn from ``rng``."""
    pools = make_pools(clips, settings.pool_clips, rng)
    in_pool = [{x.label for x in pool} for pool in pools]
    classes = sorted({x.label for x in clips})
    out = []
    for k in range(settings.count(split)):
        # Classes first (uniformly, so every class is as frequent), then a pool holding them
        # all: pool 0 holds every class, since each class's dealing starts there.
        n = int(rng.integers(1, min(settings.max_sources, len(classes)) + 1))
        chosen = [classes[c] for c in sorted(rng.choice(len(classes), size=n, replace=False))]
        fits = [q for q, names in enumerate(in_pool) if set(chosen) <= names]
        p = fits[int(rng.integers(len(fits)))]
        sources = []
        for label in chosen:
            members = [x for x in pools[p] if x.label == label]
            sources.append(members[int(rng.integers(len(members)))])
        gains = tuple(round(float(rng.uniform(*settings.gain_db)), 2) for _ in sources)
        starts = tuple(float(rng.random()) for _ in sources)
        name = f"audio/{split}/{split}-{k:04d}.flac"
        out.append(Mixture(name, split, f"{split}-pool{p:02d}", tuple(sources), gains, starts))
    return out


def active_rms(wave: np.ndarray, rate: int) -> float:
    """RMS over the 50 ms frames within 30 dB of the loudest frame (0 for silence)."""
    n = max(1, int(FRAME_S * rate))
    frames = wave[: len(wave) // n * n].reshape(-1, n) if len(wave) >= n else wave[None, :]
    power = (frames.astype(np.float64) ** 2).mean(axis=1)
    if power.max() <= 0:
        return 0.0
    active = power >= power.max() * 10 ** (-ACTIVE_DB / 10)
    return float(np.sqrt(power[active].mean()))


def placed(wave: np.ndarray, length: int, start: float) -> tuple[np.ndarray, int]:
    """``wave`` cut to ``length`` samples from its start, or, when shorter, placed ``start``
    (a fraction in [0, 1)) of the way into the room it leaves; returns it and its offset."""
    if len(wave) >= length:
        return wave[:length], 0
    return wave, int((length - len(wave)) * start)


def render(
    mix: Mixture, root: Path, settings: MixSettings, rate: int
) -> tuple[np.ndarray, tuple[int, ...], float]:
    """The mixture's samples (float32), each source's offset (samples) and the scale."""
    length = round(settings.seconds * rate)
    out = np.zeros(length, dtype=np.float64)
    level = 10 ** (settings.level_dbfs / 20)
    offsets = []
    for src, gain, start in zip(mix.sources, mix.gains_db, mix.starts, strict=True):
        # Levelled on the part that is heard (a longer clip is cut first).
        wave, offset = placed(load_clip(root / src.file, rate), length, start)
        rms = active_rms(wave, rate)
        if rms == 0:
            raise DatasetError(f"{root / src.file}: silent clip, cannot be levelled")
        out[offset : offset + len(wave)] += wave * (level / rms) * 10 ** (gain / 20)
        offsets.append(offset)
    peak = float(np.abs(out).max())
    scale = min(1.0, PEAK / peak) if peak > 0 else 1.0
    return (out * scale).astype(np.float32), tuple(offsets), scale


def _csv_text(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def check_output(out: Path, data: Path) -> None:
    """``out`` is new or an empty folder, and not inside the data folder.

    Raises:
        OutputError: naming the folder.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"--out {out} exists and is not an empty folder; choose a new one")
    if out.resolve().is_relative_to(data.resolve()):
        raise OutputError(f"--out {out} is inside the data folder {data}; choose another")


def _row(mix: Mixture, offsets: Sequence[int], scale: float, rate: int) -> dict[str, str]:
    return {
        "file": mix.file,
        "labels": ";".join(mix.labels),
        "split": mix.split,
        "group": mix.group,
        "sources": ";".join(s.file for s in mix.sources),
        "gains_db": ";".join(f"{g:.2f}" for g in mix.gains_db),
        "offsets_s": ";".join(f"{o / rate:.6f}" for o in offsets),
        "scale": repr(scale),
    }


def build(
    data: Path, out: Path, settings: MixSettings, progress: bool = True
) -> list[dict[str, str]]:
    """Plan, render and write every mixture (module docstring); returns the CSV rows."""
    check_output(out, data)
    sources = esc10_sources(data)
    rate = int(sf.info(str(data / sources[0].file)).samplerate)
    parts = split_sources(sources, settings)
    rng = np.random.default_rng(settings.seed)
    plans = [m for split in SPLITS for m in plan_split(split, parts[split], settings, rng)]
    rows = []
    for i, mix in enumerate(plans):
        wave, offsets, scale = render(mix, data, settings, rate)
        path = out / mix.file
        atomic_write(
            path, lambda tmp, w=wave: sf.write(tmp, w, rate, format="FLAC", subtype="PCM_16")
        )
        rows.append(_row(mix, offsets, scale, rate))
        if progress and (i + 1) % 100 == 0:
            print(f"{i + 1}/{len(plans)} mixtures", file=sys.stderr)
    atomic_write_text(out / "mixtures.csv", _csv_text(rows))
    atomic_write_text(
        out / "build.json",
        json.dumps(_summary(data, settings, parts, plans, rate), indent=2) + "\n",
    )
    return rows


def _summary(
    data: Path,
    settings: MixSettings,
    parts: dict[str, list[Source]],
    plans: Sequence[Mixture],
    rate: int,
) -> dict[str, object]:
    per_split: dict[str, object] = {}
    for split in SPLITS:
        mine = [m for m in plans if m.split == split]
        per_split[split] = {
            "mixtures": len(mine),
            "source_clips": len(parts[split]),
            "source_recordings": len({x.recording for x in parts[split]}),
            "groups": len({m.group for m in mine}),
            "sources_per_mixture": dict(sorted(Counter(len(m.sources) for m in mine).items())),
            "class_counts": dict(sorted(Counter(c for m in mine for c in m.labels).items())),
        }
    return {
        "data": str(data),
        "sample_rate": rate,
        "settings": asdict(settings),
        "splits": per_split,
    }


def _folds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(k) for k in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: folds as integers separated by commas"
        ) from None


def _pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give LOW,HIGH in dB, e.g. -12,0") from None
    return lo, hi


def parse_args(argv: Sequence[str] | None) -> tuple[Path, Path, MixSettings]:
    d = MixSettings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    ap.add_argument("--data", type=Path, default=DATA, help="ESC-10 root (official layout)")
    ap.add_argument("--seed", type=int, default=d.seed)
    for split in SPLITS:
        ap.add_argument(f"--{split}", type=int, default=d.count(split), help=f"{split} mixtures")
        ap.add_argument(f"--{split}-folds", type=_folds, default=d.folds(split))
    ap.add_argument("--max-sources", type=int, default=d.max_sources)
    ap.add_argument("--gain-db", type=_pair, default=d.gain_db, help="LOW,HIGH (dB)")
    ap.add_argument("--level-dbfs", type=float, default=d.level_dbfs)
    ap.add_argument("--seconds", type=float, default=d.seconds)
    ap.add_argument("--pool-clips", type=int, default=d.pool_clips)
    a = ap.parse_args(argv)
    settings = MixSettings(
        a.seed, a.train, a.valid, a.test, a.train_folds, a.valid_folds, a.test_folds,
        a.max_sources, a.gain_db, a.level_dbfs, a.seconds, a.pool_clips,
    )  # fmt: skip
    return a.data, a.out, settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        data, out, settings = parse_args(argv)
        rows = build(data, out, settings)
    except SoundTransferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = Counter(r["split"] for r in rows)
    print(f"{out / 'mixtures.csv'}: " + ", ".join(f"{counts[s]} {s}" for s in SPLITS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
