"""``predict`` over files and folders: one result per recording, resumable, shared by ranks.

The inputs (files, and folders walked recursively for the own-data audio extensions) are
listed and their headers read first (the progress bar's hours, and the offsets of a combined
table); a recording's result is then written as soon as it is finished, atomically (a temp
file beside it, then a rename), to ``OUT/<its path under the input folder>`` with the
format's suffix, so a killed run loses only the recordings in flight and ``skip_existing``
resumes. A recording that cannot be used stops the run (its error names it; the finished
results are kept), or with ``skip_bad`` goes to ``OUT/failed.csv`` with its reason while the
others go on. Under torchrun the ranks share the recordings not yet done (every ``W``-th,
after one listing that rank 0 makes and shares), each writing its own; rank 0 then writes
``failed.csv`` and the combined table. No output is written outside ``OUT`` (an existing
link leading out is refused) or over an input.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import soundfile as sf
from tqdm import tqdm

from soundtransfer import distributed as D
from soundtransfer.audio.io import check_before_decoding
from soundtransfer.datasets.own import AUDIO_EXTENSIONS
from soundtransfer.detection.tables import COMBINED, SUFFIXES, Combiner, Source, render
from soundtransfer.errors import AudioError, ConfigError, DatasetError, OutputError
from soundtransfer.inference.predict import Predictor
from soundtransfer.runs.files import atomic_write, atomic_write_text, refuse_input_as_output

FAILED = "failed.csv"


@dataclass(frozen=True)
class Recording:
    """One input recording.

    Attributes:
        path: the file, as found.
        rel: its path under the input folder it was found in (its name for a file given
            alone): where its result goes under ``OUT``.
    """

    path: Path
    rel: Path


def find_recordings(
    inputs: Sequence[Path], warn: Callable[[str], None] | None = None
) -> list[Recording]:
    """The recordings of ``inputs`` (files as given; folders walked for
    :data:`~soundtransfer.datasets.own.AUDIO_EXTENSIONS`, sorted), each once.

    Raises:
        DatasetError: a folder without audio files.
    """
    found: list[Recording] = []
    seen: dict[Path, Path] = {}
    for item in map(Path, inputs):
        if item.is_dir():
            files = sorted(
                p for p in item.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
            )
            if not files:
                raise DatasetError(f"{item}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
            batch = [Recording(p, p.relative_to(item)) for p in files]
        else:  # a file, or nothing: reading its header says so (skip_bad lists it)
            batch = [Recording(item, Path(item.name))]
        for rec in batch:
            key = rec.path.resolve()
            if key in seen:
                if warn is not None:
                    warn(f"note: {rec.path} is listed twice (also as {seen[key]}); done once")
                continue
            seen[key] = rec.path
            found.append(rec)
    return found


def header_seconds(path: Path) -> float:
    """A recording's length from its header, s (what the progress bar and a combined
    table's offsets use; decoding checks the rest).

    Raises:
        AudioError: missing, empty, a cut MP3, or without a readable audio header.
    """
    # The checks the decoder runs, first: opening a cut MP3 makes mpg123 print a warning
    # straight to stderr (fd 2), a second line before our error.
    check_before_decoding(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"{path}: cannot read the audio header ({exc})") from None
    if not info.samplerate > 0:
        raise AudioError(f"{path}: the audio header gives no sample rate")
    return float(info.frames) / float(info.samplerate)


@dataclass(frozen=True)
class FolderOptions:
    """How ``predict`` writes its results.

    Attributes:
        fmt: one of :data:`~soundtransfer.detection.tables.FORMATS`.
        out: the output folder; None writes one combined stream to ``stdout``.
        combine: also write one table over every recording (``OUT/combined.*``).
        skip_existing: leave recordings whose result exists (whatever made it) alone.
        skip_bad: a recording that cannot be used goes to ``failed.csv``; the rest go on.
        timeline: include every window (csv, json, text).
        progress: show a progress bar (files, hours of audio, ETA) on stderr.
    """

    fmt: str = "text"
    out: Path | None = None
    combine: bool = False
    skip_existing: bool = False
    skip_bad: bool = False
    timeline: bool = False
    progress: bool = False


@dataclass
class FolderResult:
    """What a run did (every rank's counts summed, on every rank).

    Attributes:
        recordings: recordings found.
        seconds: their length (from the headers that could be read), s.
        done: recordings classified in this run.
        skipped: recordings left alone because their result existed.
        failed: ``(file, reason)`` of each recording that could not be used.
        failed_csv: where they are listed, if written.
        combined: the combined table, if written.
    """

    recordings: int = 0
    seconds: float = 0.0
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    failed_csv: Path | None = None
    combined: Path | None = None


class _Inputs:
    """Every file read (recordings, bundle, thresholds), by device and inode: an output that
    is one of them is refused, whatever path reaches it."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.keys: dict[tuple[int, int], Path] = {}
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                continue
            self.keys[(st.st_dev, st.st_ino)] = Path(p)

    def refuse(self, out: Path) -> None:
        try:
            st = os.stat(out)
        except OSError:
            return
        src = self.keys.get((st.st_dev, st.st_ino))
        if src is not None:
            raise OutputError(f"{out} is an input ({src}); choose another --out")


def output_paths(recordings: Sequence[Recording], out: Path, fmt: str) -> list[Path]:
    """Where each recording's result goes: ``out / rel`` with the format's suffix.

    Raises:
        OutputError: two recordings would write the same file (e.g. ``a.wav`` and
            ``a.flac`` in one folder), or one would write the combined table's name.
    """
    paths = [out / r.rel.parent / (r.rel.stem + SUFFIXES[fmt]) for r in recordings]
    owner: dict[Path, Path] = {out / COMBINED[fmt]: Path("the combined table")}
    for rec, path in zip(recordings, paths, strict=True):
        if path in owner:
            raise OutputError(f"{rec.path} and {owner[path]} would both write {path}")
        owner[path] = rec.path
    return paths


def _check_inside(out: Path, path: Path) -> None:
    """Refuse ``path`` when an existing link under ``out`` leads it elsewhere."""
    root, target = out.resolve(), path.parent.resolve()
    if target != root and root not in target.parents:
        raise OutputError(f"{path}: its folder leads outside --out {out} (a link); not written")


def _failed_csv(failed: Sequence[tuple[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "reason"])
    writer.writerows(failed)
    return buf.getvalue()


@dataclass
class _Share:
    """This rank's part of the run and what became of it."""

    done: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (recording index, reason)
    error: tuple[int, str] | None = None  # the first bad recording without skip_bad


class FolderRun:
    """``predict`` over recordings with one loaded :class:`Predictor`.

    Args:
        predictor: the loaded model and its settings.
        options: outputs, resume, bad files, progress.
        read: files besides the recordings that the run reads (bundle, thresholds): never
            written over.
        stdout: where results go without ``options.out``.
        warn: prints a note on stderr.
    """

    def __init__(
        self,
        predictor: Predictor,
        options: FolderOptions,
        read: Sequence[Path] = (),
        stdout: IO[str] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.predictor, self.opt, self.read = predictor, options, list(read)
        self.stdout = stdout if stdout is not None else sys.stdout
        self.warn = warn or (lambda m: print(m, file=sys.stderr))
        fe = predictor.meta.frontend
        self.band = (fe.f_min, fe.f_max if fe.f_max is not None else fe.sample_rate / 2)

    def run(self, inputs: Sequence[Path]) -> FolderResult:
        """Classify every recording of ``inputs``; see the module docstring.

        Raises:
            AudioError: a recording that cannot be used, without ``skip_bad`` (after the
                others of this rank's share that came before it are written).
            DatasetError: an input not found, a folder without audio.
            OutputError: an output that is an input, leads outside ``OUT``, or two that clash.
        """
        out = self.opt.out
        if out is None and D.get_world_size() > 1:
            raise ConfigError("under torchrun, predict needs --out DIR (each rank writes there)")
        if out is None and self.opt.skip_existing:
            raise ConfigError("--skip-existing needs --out DIR (the results it looks for)")
        recs = find_recordings(inputs, self.warn)
        paths = output_paths(recs, out, self.opt.fmt) if out is not None else []
        if out is not None:
            refuse_input_as_output(out, [*inputs, *self.read])  # first: it says more
            if out.exists() and not out.is_dir():
                raise OutputError(f"--out {out} is a file; --out names a folder of results")
        guard = _Inputs([*self.read, *(r.path for r in recs)])
        seconds, bad = self._headers(recs)
        todo = [i for i in range(len(recs)) if not (self.opt.skip_existing and paths[i].exists())]
        todo = D.gather_objects(todo)[0]  # rank 0's listing, before any rank writes
        mine = todo[D.get_rank() :: D.get_world_size()]
        share = self._classify(recs, paths, seconds, bad, mine, guard)
        shares: list[_Share] = D.gather_objects(share)
        result = FolderResult(len(recs), sum(s for s in seconds if s is not None))
        result.done = sum(s.done for s in shares)
        result.skipped = len(recs) - len(todo)
        errors = sorted(s.error for s in shares if s.error is not None)
        if errors:
            kept = result.done + result.skipped
            raise AudioError(
                f"{errors[0][1]} ({kept} finished result(s) kept"
                + (f" in {out}; rerun with --skip-existing to resume" if out else "")
                + "; --skip-bad lists such recordings in failed.csv and goes on)"
            )
        failed = sorted(i for s in shares for i in s.failed)
        result.failed = [(str(recs[i].path), reason) for i, reason in failed]
        if out is not None and D.is_main():
            self._finish(result, recs, paths, seconds, guard)
        return result

    def _headers(self, recs: Sequence[Recording]) -> tuple[list[float | None], dict[int, str]]:
        """Each recording's header length (None where unreadable) and the unreadable ones'
        reasons; without ``skip_bad`` the first unreadable one is an error (nothing written)."""
        seconds: list[float | None] = []
        bad: dict[int, str] = {}
        for i, rec in enumerate(recs):
            try:
                seconds.append(header_seconds(rec.path))
            except AudioError as exc:
                if not self.opt.skip_bad:
                    raise
                seconds.append(None)
                bad[i] = str(exc)
        return seconds, bad

    def _classify(
        self,
        recs: Sequence[Recording],
        paths: Sequence[Path],
        seconds: Sequence[float | None],
        bad: dict[int, str],
        mine: Sequence[int],
        guard: _Inputs,
    ) -> _Share:
        share = _Share()
        total_h = sum(seconds[i] or 0.0 for i in mine) / 3600
        stream = Combiner(self.opt.fmt, self.stdout.write) if self.opt.out is None else None
        offset = 0.0
        with tqdm(
            total=total_h,
            unit="h",
            disable=not (self.opt.progress and D.is_main()),
            bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} h of audio [{elapsed}<{remaining}]"
            "{postfix}",
            desc="predict",
        ) as bar:
            for count, i in enumerate(mine):
                bar.set_postfix_str(f"{count}/{len(mine)} files", refresh=False)
                start_h = bar.n
                text = self._one(recs[i], i, bad, share, bar, start_h)
                bar.update(start_h + (seconds[i] or 0.0) / 3600 - bar.n)
                if text is None:
                    if share.error is not None:
                        break
                    continue
                if stream is not None:
                    stream.add(text, offset)
                    self.stdout.flush()
                else:
                    guard.refuse(paths[i])
                    _check_inside(self.opt.out, paths[i])  # type: ignore[arg-type]
                    atomic_write_text(paths[i], text)
                offset += seconds[i] or 0.0
                share.done += 1
            bar.set_postfix_str(f"{len(mine)}/{len(mine)} files")
        return share

    def _one(
        self, rec: Recording, i: int, bad: dict[int, str], share: _Share, bar: Any, start_h: float
    ) -> str | None:
        """The rendered result of recording ``i``, or None when it failed (recorded)."""
        try:
            if i in bad:
                raise AudioError(bad[i])
            pred = self.predictor.predict_file(
                rec.path, on_window=lambda s: bar.update(max(0.0, start_h + s / 3600 - bar.n))
            )
        except AudioError as exc:
            if self.opt.skip_bad:
                share.failed.append((i, str(exc)))
                self.warn(f"soundtransfer predict: skipped: {exc}")
            else:
                share.error = (i, str(exc))
            return None
        src = Source(os.path.abspath(rec.path), *self.band, self.opt.timeline)
        return render(self.opt.fmt, pred, src)

    def _finish(
        self,
        result: FolderResult,
        recs: Sequence[Recording],
        paths: Sequence[Path],
        seconds: Sequence[float | None],
        guard: _Inputs,
    ) -> None:
        """Rank 0: ``failed.csv`` (or a stale one removed) and the combined table."""
        out = self.opt.out
        assert out is not None
        failed_csv = out / FAILED
        if result.failed:
            guard.refuse(failed_csv)
            result.failed_csv = atomic_write_text(failed_csv, _failed_csv(result.failed))
        elif result.done and failed_csv.exists():
            failed_csv.unlink()  # every recording it listed has a result now, or was not retried
        if not self.opt.combine:
            return
        combined = out / COMBINED[self.opt.fmt]
        if combined.exists() and result.done == 0 and not result.failed:
            result.combined = combined  # nothing new: left as it is
            return
        guard.refuse(combined)
        parts = [(p, s or 0.0) for p, s in zip(paths, seconds, strict=True) if p.exists()]
        if not parts:  # no recording has a result: no table (a 0-byte one has not even a header)
            return
        result.combined = atomic_write(
            combined, lambda tmp: _write_combined(tmp, self.opt.fmt, parts)
        )


def _write_combined(tmp: Path, fmt: str, parts: Sequence[tuple[Path, float]]) -> None:
    """The combined table of ``parts`` (each recording's table and length, in order)."""
    with tmp.open("w", encoding="utf-8", newline="") as f:
        combiner = Combiner(fmt, f.write)
        offset = 0.0
        header: str | None = None
        for path, seconds in parts:
            text = path.read_text(encoding="utf-8")
            first = text.split("\n", 1)[0]
            try:  # a part --skip-existing kept may not be predict's (it writes atomically)
                if text and not text.endswith("\n"):
                    raise ValueError("cut short")
                if fmt in ("raven", "csv") and header is not None and first != header:
                    raise ValueError("another header")
                combiner.add(text, offset)
            except (ValueError, IndexError):
                raise ConfigError(
                    f"{path}: not a whole {fmt} table as predict writes it (cut short or "
                    "edited?); move it away and rerun to redo that recording"
                ) from None
            if header is None and text:
                header = first
            offset += seconds


def summary(result: FolderResult) -> str:
    """The last line of a run: how many recordings were done, skipped and failed."""
    hours = result.seconds / 3600
    line = (
        f"{result.recordings} recording(s), {hours:.2f} h: {result.done} done, "
        f"{result.skipped} skipped (result exists), {len(result.failed)} failed"
    )
    if result.failed_csv is not None:
        line += f" (listed in {result.failed_csv})"
    if result.combined is not None:
        line += f"; combined table {result.combined}"
    return line
