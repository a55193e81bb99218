"""Detections cut into short clips, with a CSV and a self-contained page to mark them.

``make_review(detections, audio, out)`` picks up to ``per_class`` detections of each class:
the ``top`` highest-scoring, then the rest drawn at random (seeded) in turn from ``bins``
equal-width score bins over the class's score range, so that low and middling scores are
reviewed too (the precision fit needs them). Each is cut with ``pad_s`` of context on both
sides into ``OUT/clips/NNNN.wav`` (mono, the recording's rate) and listed in
``OUT/review.csv`` (:data:`REVIEW_COLUMNS`; ``mark`` left blank for ``yes`` or ``no``).
``OUT/review.html`` shows each clip's spectrogram (PNG, inline as a data URI), an audio player
(the clip's relative path, or inline with ``embed_audio``) and yes/no buttons; its "Save
marked CSV" button downloads ``review-marked.csv``, the CSV with the marks.
``OUT/scores.csv`` holds every detection's class and score (what the precision fit weighs
the reviewed sample by, :mod:`~soundtransfer.detection.calibrate`).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from soundtransfer.detection.tables import Detection, read_detections
from soundtransfer.errors import AudioError, ConfigError, DatasetError, OutputError
from soundtransfer.runs.files import atomic_write, atomic_write_text, refuse_input_as_output

REVIEW_CSV = "review.csv"
REVIEW_HTML = "review.html"
SCORES_CSV = "scores.csv"
#: The columns of ``review.csv``; ``mark`` is ``yes``, ``no`` or blank (not reviewed).
REVIEW_COLUMNS = ("id", "file", "start_s", "end_s", "class", "score", "clip", "mark")


@dataclass(frozen=True)
class ReviewConfig:
    """Which detections are reviewed and how they are cut.

    Attributes:
        per_class: detections per class (fewer when a class has fewer).
        top: of those, the highest-scoring; the rest at random over the score bins.
        bins: equal-width score bins the random ones are drawn from in turn.
        seed: the draw's seed (the same review for the same detections).
        pad_s: context before and after each detection, s.
        max_clip_s: a longer detection is cut to its first ``max_clip_s`` seconds, s.
        embed_audio: put each clip in the page (self-contained, larger) instead of linking it.
    """

    per_class: int = 20
    top: int = 5
    bins: int = 5
    seed: int = 0
    pad_s: float = 1.0
    max_clip_s: float = 10.0
    embed_audio: bool = False

    def __post_init__(self) -> None:
        for name in ("per_class", "bins"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.top < 0:
            raise ConfigError(f"top must be >= 0, got {self.top}")
        if not (0 <= self.pad_s < 60 and 0 < self.max_clip_s <= 600):
            raise ConfigError(
                f"pad must be in [0, 60) s and max_clip in (0, 600] s, got {self.pad_s}, "
                f"{self.max_clip_s}"
            )


def pick(detections: Sequence[Detection], config: ReviewConfig) -> list[Detection]:
    """Up to ``per_class`` detections of each class (classes sorted): the ``top`` best, then
    random ones from the score bins in turn (see the module docstring)."""
    rng = np.random.default_rng(config.seed)
    chosen: list[Detection] = []
    for label in sorted({d.label for d in detections}):
        mine = sorted((d for d in detections if d.label == label), key=lambda d: -d.score)
        head, rest = mine[: min(config.top, config.per_class)], mine[config.top :]
        chosen += head
        if not rest:
            continue
        scores = np.array([d.score for d in rest])
        lo, hi = float(scores.min()), float(scores.max())
        width = (hi - lo) / config.bins or 1.0
        which = np.minimum(((scores - lo) / width).astype(int), config.bins - 1)
        pools = [list(rng.permutation(np.flatnonzero(which == b))) for b in range(config.bins)]
        want = config.per_class - len(head)
        while want > 0 and any(pools):
            for pool in pools:  # one from each bin in turn, lowest first
                if pool and want > 0:
                    chosen.append(rest[int(pool.pop())])
                    want -= 1
    return chosen


def _source(file: str, audio: Path) -> Path:
    """The recording a detection names: as written if it exists, else under ``audio`` by the
    longest tail of its path found there (``/old/disk/site1/a.wav`` as ``audio/site1/a.wav``,
    then ``audio/a.wav``: a table moved to another machine)."""
    path = Path(file)
    parts = path.parts[1:] if path.is_absolute() else path.parts
    tails = [audio.joinpath(*parts[k:]) for k in range(len(parts))]
    for cand in (path, *tails):
        if cand.is_file():
            return cand
    raise AudioError(f"{file}: recording not found (looked there and under --audio {audio})")


def cut(det: Detection, audio: Path, config: ReviewConfig) -> tuple[np.ndarray, int, float]:
    """The clip of ``det``: mono samples ``(n,)`` float32, the rate (Hz), its start in the
    recording (s).

    Raises:
        AudioError: the recording is missing, unreadable, or shorter than the detection.
    """
    src = _source(det.file, audio)
    try:
        info = sf.info(str(src))
        rate = info.samplerate
        start = max(0.0, det.start_s - config.pad_s)
        end = min(det.start_s + config.max_clip_s, det.end_s) + config.pad_s
        a, b = round(start * rate), min(info.frames, round(end * rate))
        if a >= b:
            raise AudioError(f"{src}: {det.where}: the detection starts after the recording ends")
        wave, _ = sf.read(str(src), start=a, stop=b, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{src}: cannot read ({exc})") from None
    return wave.mean(axis=1), rate, a / rate


def spectrogram_png(wave: np.ndarray, rate: int) -> bytes:
    """A log-magnitude spectrogram of ``wave`` (n,) as PNG bytes (time across, frequency up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_fft = 512 if rate > 24000 else 256
    hop = n_fft // 4
    x = np.pad(wave, (0, max(0, n_fft - len(wave))))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)).T ** 2  # (freq, time)
    # Rows on a mel scale (128, nearest FFT bin): most sounds sit in the lowest few kHz,
    # which a linear axis squeezes into the bottom rows.
    mel = np.linspace(0.0, 2595 * np.log10(1 + rate / 2 / 700), 128)
    rows = np.rint((700 * (10 ** (mel / 2595) - 1)) / (rate / n_fft)).astype(int)
    db = 10 * np.log10(power[np.minimum(rows, power.shape[0] - 1)] + 1e-10)
    top = max(float(db.max()), -60.0)  # digital silence stays dark, not stretched to bright
    buf = io.BytesIO()
    plt.imsave(buf, np.clip(db, top - 80, top), cmap="magma", origin="lower", format="png")
    return buf.getvalue()


def _wav_bytes(wave: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@dataclass(frozen=True)
class _Item:
    row: dict[str, str]
    png: bytes
    audio_src: str


def make_review(
    detections: Path, audio: Path, out: Path, config: ReviewConfig | None = None
) -> list[dict[str, str]]:
    """Cut the review of ``detections`` (a table or a folder of tables of ``predict``) into
    ``out`` (see the module docstring); returns the rows of ``review.csv``.

    Raises:
        DatasetError: a bad detections table, or no detections.
        AudioError: a recording that cannot be cut (named).
        OutputError: ``out`` is an input, or already holds a review (marks would be lost).
    """
    config = config or ReviewConfig()
    out, audio = Path(out), Path(audio)
    refuse_input_as_output(out, [detections, audio])
    if (out / REVIEW_CSV).exists():
        raise OutputError(f"--out {out} already holds a review ({REVIEW_CSV}); choose another")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; --out names the review's folder")
    found = read_detections(detections)
    if not found:
        raise DatasetError(f"{detections}: no detections to review")
    items: list[_Item] = []
    for n, det in enumerate(pick(found, config), 1):
        wave, rate, _start = cut(det, audio, config)
        clip = f"clips/{n:04d}.wav"
        data = _wav_bytes(wave, rate)
        atomic_write(out / clip, lambda tmp, data=data: tmp.write_bytes(data))  # type: ignore[misc]
        inline = "data:audio/wav;base64," + base64.b64encode(data).decode()
        src = inline if config.embed_audio else clip
        row = {"id": str(n), "file": det.file, "start_s": f"{det.start_s:.3f}",
               "end_s": f"{det.end_s:.3f}", "class": det.label, "score": f"{det.score:.4f}",
               "clip": clip, "mark": ""}  # fmt: skip
        items.append(_Item(row, spectrogram_png(wave, rate), src))
    rows = [i.row for i in items]
    atomic_write_text(out / SCORES_CSV, _csv([{"class": d.label, "score": f"{d.score:.4f}"}
                                               for d in found], ("class", "score")))  # fmt: skip
    atomic_write_text(out / REVIEW_HTML, review_page(items, config))
    atomic_write_text(out / REVIEW_CSV, _csv(rows, REVIEW_COLUMNS))  # last: it marks "done"
    return rows


def _csv(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


_SCRIPT = """
const COLUMNS = %(columns)s;
const rows = JSON.parse(document.getElementById("rows").textContent);
function mark(id, value) {
  const row = rows.find(r => r.id === id);
  row.mark = row.mark === value ? "" : value;  // a second click takes the mark back
  const tr = document.getElementById("row-" + id);
  tr.dataset.mark = row.mark;
  tr.querySelector(".state").textContent = row.mark || "-";
  document.getElementById("count").textContent =
    rows.filter(r => r.mark).length + " of " + rows.length + " marked";
}
function cell(v) {
  v = String(v);
  return /[",\\n\\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
}
function saveCsv() {
  const text = [COLUMNS.join(",")]
    .concat(rows.map(r => COLUMNS.map(c => cell(r[c])).join(","))).join("\\n") + "\\n";
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], {type: "text/csv"}));
  a.download = "review-marked.csv";
  document.body.appendChild(a);
  a.click();
  a.remove();
}
"""

_STYLE = """
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; }
td, th { border-bottom: 1px solid #ccc; padding: 4px 8px; text-align: left; }
img.spec { width: 360px; height: 110px; image-rendering: pixelated; display: block; }
tr[data-mark="yes"] { background: #e3f6e3; }
tr[data-mark="no"] { background: #f9e0e0; }
button { font-size: 1em; margin: 2px; }
.bar { position: sticky; top: 0; background: white; padding: 6px 0; }
"""


def review_page(items: Sequence[_Item], config: ReviewConfig) -> str:
    """The page of the review: one row per clip, yes/no buttons, a save button (no network,
    no file but the clips when they are linked)."""
    body = []
    for it in items:
        r = {k: html.escape(v) for k, v in it.row.items()}
        png = base64.b64encode(it.png).decode()
        i = r["id"]
        body.append(
            f'<tr id="row-{i}" data-mark=""><td>{i}</td><td><b>{r["class"]}</b><br>'
            f"score {r['score']}</td><td>{html.escape(Path(it.row['file']).name)}<br>"
            f"{r['start_s']} - {r['end_s']} s</td>"
            f'<td><img class="spec" alt="spectrogram" src="data:image/png;base64,{png}">'
            f'<audio controls preload="none" src="{html.escape(it.audio_src)}"></audio></td>'
            f"<td><button class=\"yes\" onclick=\"mark('{i}', 'yes')\">yes</button>"
            f"<button class=\"no\" onclick=\"mark('{i}', 'no')\">no</button>"
            f' <span class="state">-</span></td></tr>'
        )
    rows_json = json.dumps([it.row for it in items]).replace("</", "<\\/")
    script = _SCRIPT % {"columns": json.dumps(list(REVIEW_COLUMNS))}
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>soundtransfer review'
        f"</title><style>{_STYLE % {}}</style></head><body>\n"
        '<div class="bar"><button id="save" onclick="saveCsv()">save marked CSV</button> '
        f'<span id="count">0 of {len(items)} marked</span> &mdash; is each clip its class? '
        f"(a clip is the detection with {config.pad_s:g} s either side; the marked CSV goes to "
        "<code>review --marked</code>)</div>\n"
        "<table><tr><th>#</th><th>detection</th><th>where</th><th>spectrogram and sound</th>"
        "<th>right?</th></tr>\n" + "\n".join(body) + "\n</table>\n"
        f'<script type="application/json" id="rows">{rows_json}</script>\n'
        f"<script>{script}</script>\n</body></html>\n"
    )
