"""Feature store: build, reopen without work, resume after a kill, invalidation, bad clips."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import soundtransfer.features.store as store_module
from soundtransfer.audio import LogMel3, get_preset, load_clip
from soundtransfer.datasets import load_dataset
from soundtransfer.errors import AudioError, DatasetError
from soundtransfer.features import build_features, open_features
from soundtransfer.features.progress import read_progress
from soundtransfer.features.store import ROW_ATOL, ROW_RTOL


def _assert_rows_close(a: np.ndarray, b: np.ndarray) -> None:
    """Rows computed with other thread or worker counts: equal within the store's promise
    (``ROW_ATOL``, ``ROW_RTOL``: float32 sums in another order, then float16 rounding), not
    bitwise (MKL's kernels depend on the CPU, the thread split and alignment)."""
    assert a.shape == b.shape
    np.testing.assert_allclose(
        np.asarray(a, np.float32), np.asarray(b, np.float32), atol=ROW_ATOL, rtol=ROW_RTOL
    )


def _die_on_load_clip(monkeypatch: pytest.MonkeyPatch, call: int) -> Callable[[], None]:
    """Patch ``load_clip`` to raise KeyboardInterrupt on its ``call``-th call (1-based);
    returns a function that puts the real ``load_clip`` back."""
    original = store_module.load_clip
    seen: list[str] = []

    def dying(path: Path, *args: object, **kwargs: object) -> np.ndarray:
        seen.append(Path(path).name)
        if len(seen) == call:
            raise KeyboardInterrupt
        return original(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "load_clip", dying)
    return lambda: monkeypatch.setattr(store_module, "load_clip", original)


@pytest.fixture
def small_root(esc10_root: Path, tmp_path: Path) -> Path:
    """12 real ESC-10 clips over 2 folds, copied so the test may damage them."""
    root = tmp_path / "esc"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    lines = (esc10_root / "meta" / "esc50.csv").read_text().splitlines()
    rows = [r for r in lines[1:] if r.startswith(("1-", "2-"))][::14][:12]
    (root / "meta" / "esc50.csv").write_text("\n".join([lines[0], *rows]) + "\n")
    for r in rows:
        shutil.copy(esc10_root / "audio" / r.split(",")[0], root / "audio")
    return root


def test_build_matches_frontend_and_reopens(small_root: Path, tmp_path: Path) -> None:
    table = load_dataset("esc10", small_root)
    store = build_features(table, cache_dir=tmp_path / "c", batch_size=5, progress=False)
    assert store.images.shape == (12, 3, 128, 250) and store.images.dtype == np.float16
    cfg = get_preset("esc10")
    wave = torch.from_numpy(load_clip(table.path(7), cfg.sample_rate, cfg.clip_samples))
    want = LogMel3(cfg)(wave[None])[0].numpy()
    _assert_rows_close(store.images[7], want)  # float16 of the workers' row vs this float32
    mtime = (store.dir / "images.f16").stat().st_mtime_ns
    again = build_features(table, cache_dir=tmp_path / "c", batch_size=5, progress=False)
    assert again.dir == store.dir and (again.dir / "images.f16").stat().st_mtime_ns == mtime


def test_interrupted_build_resumes_to_the_same_result(
    small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = load_dataset("esc10", small_root)
    full = build_features(table, cache_dir=tmp_path / "a", batch_size=4, progress=False)
    assert full.computed == 12
    calls = {"n": 0}
    original = LogMel3.forward

    def dying(self: LogMel3, wave: torch.Tensor) -> torch.Tensor:
        calls["n"] += wave.shape[0]
        # The 6th clip belongs to the second batch of 4, whatever the threads' order: the
        # third batch is only submitted once the first one is collected.
        if calls["n"] == 6:
            raise KeyboardInterrupt  # killed during the second batch
        return original(self, wave)

    monkeypatch.setattr(LogMel3, "forward", dying)
    with pytest.raises(KeyboardInterrupt):
        build_features(table, cache_dir=tmp_path / "b", batch_size=4, progress=False)
    (partial,) = (tmp_path / "b" / "features").iterdir()
    assert not (partial / "index.json").exists()  # not a store yet
    kept = (partial / "images.f16").read_bytes()[: 4 * full.images[0].nbytes]  # rows 0-3
    with pytest.raises(DatasetError, match="unfinished"):
        open_features(partial)
    monkeypatch.setattr(LogMel3, "forward", original)
    counted = {"n": 0}

    def counting(self: LogMel3, wave: torch.Tensor) -> torch.Tensor:
        counted["n"] += wave.shape[0]
        return original(self, wave)

    monkeypatch.setattr(LogMel3, "forward", counting)
    # Resumed with another batch size: progress is kept per row, not per batch.
    resumed = build_features(table, cache_dir=tmp_path / "b", batch_size=5, progress=False)
    assert counted["n"] == 8 and resumed.computed == 8  # the first 4 rows were kept
    assert np.asarray(resumed.images[:4]).tobytes() == kept  # bitwise: kept, not recomputed
    # Bitwise too: the same computation as the straight build, in this process, with the same
    # worker count (each clip on one worker thread, the same kernels on the same buffers).
    np.testing.assert_array_equal(np.asarray(resumed.images), np.asarray(full.images))
    assert not list(resumed.dir.glob("progress*"))  # complete: no progress logs left


def test_interrupt_while_decoding_keeps_finished_rows(
    small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = load_dataset("esc10", small_root)
    restore = _die_on_load_clip(monkeypatch, 9)
    with pytest.raises(KeyboardInterrupt):
        build_features(table, cache_dir=tmp_path, batch_size=3, workers=0, progress=False)
    restore()
    resumed = build_features(table, cache_dir=tmp_path, batch_size=3, progress=False)
    assert resumed.computed == 6  # batches 1 and 2 (rows 0-5) survived the interrupt


def test_up_to_date_store_decodes_nothing(
    small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = load_dataset("esc10", small_root)
    first = build_features(table, cache_dir=tmp_path, progress=False)

    def refuse(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("decoded a clip of an up-to-date store")

    monkeypatch.setattr(store_module, "load_clip", refuse)
    again = build_features(table, cache_dir=tmp_path, progress=False)
    assert again.computed == 0 and again.key == first.key
    meta = json.loads((again.dir / "index.json").read_text())
    assert meta["done"] == 12 and meta["shape"] == [12, 3, 128, 250]
    assert [r[0] for r in meta["rows"]] == [c.file for c in table.clips]


def test_changes_invalidate(small_root: Path, tmp_path: Path) -> None:
    table = load_dataset("esc10", small_root)
    a = build_features(table, cache_dir=tmp_path, progress=False)
    b = build_features(table, get_preset("esc10", n_mels=64), cache_dir=tmp_path, progress=False)
    assert a.key != b.key and b.images.shape[2] == 64
    c = build_features(table.subset(range(11)), cache_dir=tmp_path, progress=False)  # file list
    relabelled = dataclasses.replace(
        table, clips=(dataclasses.replace(table.clips[0], label=9), *table.clips[1:])
    )
    d = build_features(relabelled, cache_dir=tmp_path, progress=False)  # a label
    f = table.path(0)
    os.utime(f, ns=(1, 1))  # same bytes, other mtime
    e = build_features(load_dataset("esc10", small_root), cache_dir=tmp_path, progress=False)
    keys = {s.key for s in (a, b, c, d, e)}
    assert len(keys) == 5 and e.computed == 12
    assert len({s.dir for s in (a, b, c, d, e)}) == 5  # old stores stay in place
    assert a.dir.exists() and (a.dir / "images.f16").exists()


def test_bad_clip_error_or_report(
    small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = load_dataset("esc10", small_root)
    full = build_features(table, cache_dir=tmp_path / "ok", progress=False)
    bad = table.path(3)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # cut in half
    with pytest.raises(AudioError, match=bad.name):
        build_features(table, cache_dir=tmp_path, batch_size=2, progress=False)
    store = build_features(table, cache_dir=tmp_path, batch_size=2, skip_bad=True, progress=False)
    assert len(store) == 11 and store.computed == 9  # rows 0-1 were kept from the failed run
    assert [b["file"] for b in store.bad] == [table.clips[3].file]
    assert "truncated" in store.bad[0]["reason"]
    assert json.loads((store.dir / "bad.json").read_text()) == list(store.bad)
    assert table.clips[3] not in store.table.clips
    good = [i for i in range(12) if i != 3]
    # Bitwise: rows copied from the full table's store, computed as `full`'s were (this
    # process, the same worker count).
    np.testing.assert_array_equal(np.asarray(store.images), np.asarray(full.images)[good])
    # The good table has its own key: building it directly finds the same store.
    direct = build_features(table.subset(good), cache_dir=tmp_path, progress=False)
    assert direct.dir == store.dir and direct.computed == 0

    def refuse(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("decoded a clip of an up-to-date store")

    monkeypatch.setattr(store_module, "load_clip", refuse)
    again = build_features(table, cache_dir=tmp_path, skip_bad=True, progress=False)
    assert again.dir == store.dir and again.computed == 0 and len(again.bad) == 1
    with pytest.raises(AudioError, match=bad.name):  # without skip_bad: still an error
        build_features(table, cache_dir=tmp_path, progress=False)


def test_non_finite_values_are_refused(
    small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = load_dataset("esc10", small_root).subset(range(3))
    cfg = get_preset("esc10")
    target = torch.from_numpy(load_clip(table.path(1), cfg.sample_rate, cfg.clip_samples))
    original = LogMel3.forward

    def overflowing(self: LogMel3, wave: torch.Tensor) -> torch.Tensor:
        out = original(self, wave)
        for k in range(wave.shape[0]):
            if torch.equal(wave[k], target):  # the same file decoded the same way: bitwise
                out[k, 0, 0, 0] = 1e6  # beyond float16's 65504
        return out

    monkeypatch.setattr(LogMel3, "forward", overflowing)
    with pytest.raises(AudioError, match=f"{table.clips[1].file}.*not finite"):
        build_features(table, cache_dir=tmp_path, progress=False)


def test_store_key_is_module_function(small_root: Path) -> None:
    table = load_dataset("esc10", small_root)
    assert store_module.store_key(table, get_preset("esc10")) == store_module.store_key(
        table, get_preset("esc10")
    )
    assert store_module.store_dir(table, get_preset("esc10"), Path("/c")).parent == Path(
        "/c/features"
    )


def test_batched_device_path_equals_per_clip_path(small_root: Path) -> None:
    """The GPU path (workers decode, one batched forward) gives the CPU path's rows."""
    table = load_dataset("esc10", small_root).subset(range(4))
    cfg = get_preset("esc10")
    model = LogMel3(cfg)
    waves: list[np.ndarray | str] = [store_module._decode(table, i, cfg) for i in range(3)] + [
        "x.ogg: cannot decode"
    ]
    images: list[np.ndarray | str] = [
        store_module._clip_image(model, table, i, cfg) for i in range(3)
    ] + ["x.ogg: cannot decode"]
    bad: list[dict[str, object]] = []
    rows = [0, 1, 2, 3]
    good, batched = store_module._batch_images(table, rows, waves, model, "cpu", True, bad)
    good2, per_clip = store_module._batch_images(table, rows, images, None, "cpu", True, [])
    assert good == good2 == [0, 1, 2] and [b["row"] for b in bad] == [3]
    _assert_rows_close(batched, per_clip)  # another code path: a batch of frames per FFT call


def test_cli_builds_then_is_up_to_date(
    small_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from soundtransfer.cli.main import main

    args = ["features", "esc10", "--root", str(small_root), "--cache", str(tmp_path), "--quiet"]
    assert main([*args, "--batch-size", "5", "--frontend", "n_mels=64"]) == 0
    first = capsys.readouterr().out
    assert "clips: 12  shape: (12, 3, 64, 250)" in first and "computed 12 clips" in first
    assert main([*args, "--frontend", "n_mels=64"]) == 0
    assert "up to date" in capsys.readouterr().out
    bad = load_dataset("esc10", small_root).path(0)
    bad.write_bytes(b"garbage" * 100)
    assert main(args) == 2
    assert bad.name in capsys.readouterr().err
    assert main([*args, "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "clips: 11" in out and "bad clips left out: 1" in out


def _overflowing_wav(path: Path) -> None:
    """Overwrite ``path`` with a valid float WAV whose samples are 1e30 (log-mel overflows)."""
    import soundfile as sf

    sf.write(path, np.full(44100, 1e30, dtype=np.float32), 44100, format="WAV", subtype="FLOAT")


@pytest.mark.parametrize("workers", [0, 2])
def test_clip_whose_log_mel_overflows_is_a_bad_clip(
    small_root: Path, tmp_path: Path, workers: int
) -> None:
    """Finite samples, non-finite image: skipped and reported with skip_bad like an
    undecodable clip, otherwise one error naming the file (not an abort of the whole build)."""
    table = load_dataset("esc10", small_root).subset(range(6))
    _overflowing_wav(table.path(2))
    args = {"cache_dir": tmp_path, "batch_size": 4, "workers": workers, "progress": False}
    with pytest.raises(AudioError, match=f"{table.clips[2].file}.*not finite") as err:
        build_features(table, **args)  # type: ignore[arg-type]
    assert "\n" not in str(err.value) and "skip-bad" in str(err.value)
    store = build_features(table, skip_bad=True, **args)  # type: ignore[arg-type]
    assert len(store) == 5 and [b["file"] for b in store.bad] == [table.clips[2].file]
    assert "not finite" in store.bad[0]["reason"]
    assert np.isfinite(np.asarray(store.images, dtype=np.float32)).all()


def test_device_path_overflowing_clip_is_a_bad_clip(small_root: Path) -> None:
    """The batched path (GPU: workers decode, one forward) treats it per clip too."""
    table = load_dataset("esc10", small_root).subset(range(3))
    _overflowing_wav(table.path(1))
    cfg = get_preset("esc10")
    waves: list[np.ndarray | str] = [store_module._decode(table, i, cfg) for i in range(3)]
    bad: list[dict[str, object]] = []
    good, img16 = store_module._batch_images(
        table, [0, 1, 2], waves, LogMel3(cfg), "cpu", True, bad
    )
    assert good == [0, 2] and img16.shape[0] == 2 and np.isfinite(img16).all()
    assert [b["row"] for b in bad] == [1] and "not finite" in str(bad[0]["reason"])
    with pytest.raises(AudioError, match=table.clips[1].file):
        store_module._batch_images(table, [0, 1, 2], waves, LogMel3(cfg), "cpu", False, [])


def test_rerun_after_a_failed_build_says_it_resumes(small_root: Path, tmp_path: Path) -> None:
    table = load_dataset("esc10", small_root)
    bad = table.path(5)
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(AudioError, match=bad.name):
        build_features(table, cache_dir=tmp_path, batch_size=2, progress=False)
    store = build_features(table, cache_dir=tmp_path, batch_size=2, skip_bad=True, progress=False)
    assert store.resumed == 4 and store.computed == 7  # rows 0-3 kept; 4 and 6-11 computed
    again = build_features(table, cache_dir=tmp_path, skip_bad=True, progress=False)
    assert again.resumed == 0 and again.computed == 0  # complete: nothing resumed


def test_unfinished_skip_bad_build_is_not_finished_without_skip_bad(
    small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad clips recorded by an interrupted --skip-bad run: a plain run must refuse them, not
    finish a store that silently lacks them."""
    table = load_dataset("esc10", small_root)
    table.path(1).write_bytes(b"garbage" * 100)
    restore = _die_on_load_clip(monkeypatch, 7)
    args = {"cache_dir": tmp_path, "batch_size": 3, "workers": 0, "progress": False}
    with pytest.raises(KeyboardInterrupt):
        build_features(table, skip_bad=True, **args)  # type: ignore[arg-type]
    restore()
    with pytest.raises(AudioError, match=table.path(1).name) as err:
        build_features(table, **args)  # type: ignore[arg-type]
    assert "skip-bad" in str(err.value)
    store = build_features(table, skip_bad=True, **args)  # type: ignore[arg-type]
    assert len(store) == 11 and store.resumed == 6 and store.computed == 6


@pytest.mark.parametrize("damage", ["images cut short", "images deleted", "progress garbled"])
def test_unfinished_store_with_damaged_files_is_rebuilt(
    small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    table = load_dataset("esc10", small_root).subset(range(6))
    reference = build_features(table, cache_dir=tmp_path / "ref", progress=False)
    original = LogMel3.forward
    calls = {"n": 0}

    def dying(self: LogMel3, wave: torch.Tensor) -> torch.Tensor:
        calls["n"] += wave.shape[0]
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return original(self, wave)

    monkeypatch.setattr(LogMel3, "forward", dying)
    with pytest.raises(KeyboardInterrupt):
        build_features(table, cache_dir=tmp_path, batch_size=2, workers=0, progress=False)
    monkeypatch.setattr(LogMel3, "forward", original)
    (partial,) = (tmp_path / "features").iterdir()
    images, log = partial / "images.f16", partial / "progress.r0.log"
    key = partial.name.rsplit("-", 1)[1]
    assert read_progress(partial, key, 6) is not None
    assert read_progress(partial, key, 6).done.tolist() == [True] * 4 + [False] * 2  # type: ignore[union-attr]
    if damage == "images cut short":
        images.write_bytes(images.read_bytes()[:1000])
    elif damage == "images deleted":
        images.unlink()
    else:
        lines = log.read_text().splitlines()
        log.write_text("\n".join([lines[0], '{"done": [0, 1', *lines[1:]]) + "\n")
    store = build_features(table, cache_dir=tmp_path, progress=False)
    assert store.resumed == 0 and store.computed == 6
    # Bitwise: rebuilt as `reference` was, in this process with the same worker count.
    np.testing.assert_array_equal(np.asarray(store.images), np.asarray(reference.images))


def test_cli_says_it_resumes_an_unfinished_store(
    small_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from soundtransfer.cli.main import main

    bad = load_dataset("esc10", small_root).path(7)
    bad.write_bytes(b"garbage" * 100)
    args = ["features", "esc10", "--root", str(small_root), "--cache", str(tmp_path), "--quiet"]
    assert main([*args, "--batch-size", "3"]) == 2
    capsys.readouterr()
    assert main([*args, "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "resumed an unfinished feature store: 6 of 12" in captured.err
    assert main([*args, "--skip-bad"]) == 0
    assert "resumed an unfinished" not in capsys.readouterr().err


def test_threaded_build_equals_inline_build(small_root: Path, tmp_path: Path) -> None:
    """Worker threads (decoding and computing clips concurrently, two batches in flight)
    write the rows a build without threads writes (within the store's tolerance: inline, the
    front end runs on the tests' intra-op threads, the workers on one each)."""
    table = load_dataset("esc10", small_root)
    inline = build_features(
        table, cache_dir=tmp_path / "a", batch_size=5, workers=0, progress=False
    )
    threaded = build_features(
        table, cache_dir=tmp_path / "b", batch_size=5, workers=3, progress=False
    )
    assert threaded.computed == inline.computed == 12
    _assert_rows_close(threaded.images, inline.images)


def test_float16_images_flags_what_float16_cannot_hold() -> None:
    img = torch.zeros(5, 2, 3)
    img[1, 0, 0] = 65519.0  # rounds to 65504, float16's largest finite value
    img[2, 1, 2] = -65520.0  # rounds (to even) to -inf
    img[3, 0, 1] = float("nan")
    img[4, 1, 1] = float("inf")
    img16, finite = store_module.float16_images(img)
    assert img16.dtype == np.float16 and img16.shape == (5, 2, 3)
    assert finite.tolist() == [True, True, False, False, False]
    assert finite.tolist() == np.isfinite(img16).reshape(5, -1).all(axis=1).tolist()
    assert img16[1, 0, 0] == 65504.0


def test_cli_native_resolution_stores_the_unresized_width(
    small_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from soundtransfer.cli.main import main

    args = ["features", "esc10", "--root", str(small_root), "--cache", str(tmp_path), "--quiet"]
    assert main([*args, "--frontend", "out_frames=native"]) == 0
    assert "clips: 12  shape: (12, 3, 128, 501)" in capsys.readouterr().out
    assert main([*args, "--frontend", "out_frames=wide"]) == 2
    err = capsys.readouterr().err.strip()
    assert "out_frames" in err and "\n" not in err
