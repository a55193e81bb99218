"""The multi-label benchmark's mixtures (real ESC-10 clips) and its single-label baseline."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

from soundtransfer.audio.io import load_clip
from soundtransfer.errors import ConfigError, OutputError

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "multilabel"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"multilabel_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


bm = _module("build_mixtures")
baseline = _module("baseline")
ARGS = ["--train", "12", "--valid", "4", "--test", "6", "--seed", "3"]


@pytest.fixture(scope="module")
def built(esc10_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mixtures") / "m"
    assert bm.main(["--out", str(out), "--data", str(esc10_root), *ARGS]) == 0
    return out


@pytest.fixture(scope="module")
def esc_meta(esc10_root: Path) -> dict[str, dict[str, str]]:
    with (esc10_root / "meta" / "esc50.csv").open(newline="") as fh:
        return {f"audio/{r['filename']}": r for r in csv.DictReader(fh)}


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "mixtures.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_labels_are_the_sources_classes(built: Path, esc_meta: dict[str, dict[str, str]]) -> None:
    rows = _rows(built)
    assert [r["split"] for r in rows] == ["train"] * 12 + ["valid"] * 4 + ["test"] * 6
    for r in rows:
        sources = r["sources"].split(";")
        classes = sorted(esc_meta[s]["category"] for s in sources)
        assert 1 <= len(sources) <= 3 and len(set(classes)) == len(classes)
        assert r["labels"].split(";") == classes


def test_no_source_recording_crosses_splits_or_groups(
    built: Path, esc_meta: dict[str, dict[str, str]]
) -> None:
    folds = {"train": {"1", "2", "3"}, "valid": {"4"}, "test": {"5"}}
    split_of: dict[str, str] = {}
    group_of: dict[str, str] = {}
    for r in _rows(built):
        assert r["group"].startswith(r["split"] + "-")
        for s in r["sources"].split(";"):
            meta = esc_meta[s]
            assert meta["fold"] in folds[r["split"]]
            rec = meta["src_file"]
            assert split_of.setdefault(rec, r["split"]) == r["split"]
            assert group_of.setdefault(rec, r["group"]) == r["group"]  # a pool is a group


def test_audio_is_the_sum_of_its_sources(built: Path, esc10_root: Path) -> None:
    settings = bm.MixSettings()
    level = 10 ** (settings.level_dbfs / 20)
    for r in _rows(built):
        got, rate = sf.read(built / r["file"], dtype="float64")
        assert len(got) == round(settings.seconds * rate)
        expected = np.zeros_like(got)
        fields = (r[k].split(";") for k in ("sources", "gains_db", "offsets_s"))
        for src, gain, offset in zip(*fields, strict=True):
            wave = load_clip(esc10_root / src, rate)[: len(got)]
            at = round(float(offset) * rate)
            gain_lin = level / bm.active_rms(wave, rate) * 10 ** (float(gain) / 20)
            expected[at : at + len(wave)] += wave * gain_lin
        expected *= float(r["scale"])
        # Written as 16-bit FLAC: each sample within one quantisation step (2^-15) of the sum.
        assert np.abs(got - expected).max() <= 1.01 / 32768
        assert np.abs(got).max() <= bm.PEAK + 1 / 32768


def test_same_seed_same_mixtures(built: Path, esc10_root: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert bm.main(["--out", str(again), "--data", str(esc10_root), *ARGS]) == 0
    assert (again / "mixtures.csv").read_text() == (built / "mixtures.csv").read_text()
    first = _rows(built)[0]["file"]
    assert np.array_equal(sf.read(again / first)[0], sf.read(built / first)[0])


def test_active_rms_ignores_silence() -> None:
    rate = 1000
    tone = 0.3 * np.sin(2 * np.pi * 50 * np.arange(rate) / rate)
    padded = np.concatenate([np.zeros(2 * rate), tone, np.zeros(rate)])
    # Whole 50 ms frames of a 50 Hz tone: the RMS of a sine, 0.3 / sqrt(2), to float64 sums.
    assert abs(bm.active_rms(padded, rate) - 0.3 / np.sqrt(2)) < 1e-9
    assert bm.active_rms(np.zeros(rate), rate) == 0.0


def test_refuses_a_used_output_folder(
    built: Path, esc10_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (built / "mixtures.csv").read_text()
    assert bm.main(["--out", str(built), "--data", str(esc10_root), *ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "exists and is not an empty folder" in err
    assert (built / "mixtures.csv").read_text() == before


def test_refuses_an_output_inside_the_data(tmp_path: Path) -> None:
    data = tmp_path / "esc10"
    data.mkdir()
    with pytest.raises(OutputError, match="inside the data folder"):
        bm.check_output(data / "mixtures", data)


@pytest.mark.parametrize(
    "args",
    [
        ["--valid-folds", "3"],  # overlaps the train folds
        ["--max-sources", "0"],
        ["--gain-db", "0,-6"],
        ["--train", "0"],
    ],
)
def test_bad_settings_exit_2(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bm.main(["--out", str(tmp_path / "o"), *args]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError):
        bm.MixSettings(max_sources=11)


def test_single_label_scores_as_tags(built: Path) -> None:
    mix = baseline.read_mixtures(built / "mixtures.csv")
    test = mix.rows("test")
    rng = np.random.default_rng(0)
    names = [*mix.classes, "helicopter_extra"]  # a model class the mixtures never name
    truth = np.array([[c in mix.labels[i] for c in names] for i in test], dtype=float)
    scores = truth + 0.3 * rng.random(truth.shape)  # positives always above negatives
    report = baseline.single_label_tags_report(scores, names, mix)
    assert report.classes == mix.classes and abs(report.mean_ap - 1.0) < 1e-12
    # The model's class order does not matter: the columns are matched by name.
    noisy = truth + rng.normal(size=truth.shape)
    order = rng.permutation(len(names))
    aligned = baseline.single_label_tags_report(noisy, names, mix)
    shuffled = baseline.single_label_tags_report(noisy[:, order], [names[k] for k in order], mix)
    np.testing.assert_array_equal(shuffled.per_class_ap, aligned.per_class_ap)  # NaN == NaN
    assert aligned.mean_ap < 1.0  # the noise matters, so the check above compares real APs
    with pytest.raises(ValueError, match="has no class"):
        baseline.single_label_tags_report(scores[:, 1:], names[1:], mix)
    with pytest.raises(ValueError, match="expected"):
        baseline.single_label_tags_report(scores[:-1], names, mix)


def test_classes_are_equally_frequent_whatever_the_pools(esc10_root: Path) -> None:
    # Planning only (no audio): helicopter has 7 recordings in folds 1-3 for 12 pools, yet
    # classes are drawn before pools, so it is as frequent as any other class.
    parts = bm.split_sources(bm.esc10_sources(esc10_root), bm.MixSettings())
    settings = bm.MixSettings(train=3000)
    plans = bm.plan_split("train", parts["train"], settings, np.random.default_rng(0))
    counts = Counter(c for m in plans for c in m.labels)
    # 3000 mixtures of 1-3 classes out of 10: 600 per class expected, binomial sd about 22;
    # 15 % (90) is four of them.
    assert len(counts) == 10 and max(abs(n - 600) for n in counts.values()) < 90
    pools = bm.make_pools(parts["test"], 2, np.random.default_rng(0))
    assert {x.label for x in pools[0]} == {x.label for x in parts["test"]}
