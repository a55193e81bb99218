"""Probes on a frozen encoder's embeddings: one entry per kind (the probe axis).

Linear evaluation (``--set mode=linear``, the ``linear-eval`` command) trains the probe
``--set probe=KIND`` on the cached embeddings of the training rows; every kind is a
:class:`~soundtransfer.train.probes.base.ProbeKind` with its settings (from the ``probe``
group of :class:`~soundtransfer.train.config.TrainConfig`), its fit, and the head it leaves
in the model bundle (one definition per head kind, :mod:`soundtransfer.models.heads`). It is
also the run's mode: ``run_split`` calls ``kind.train(job)`` as it calls fine-tuning's.

=========  ==================================================================================
kind       module
=========  ==================================================================================
linear     :mod:`~.linear`: the paper's FC layer trained by the loop (the default)
logistic   :mod:`~.logistic`: converged multinomial logistic regression, ``C`` by inner folds
mlp        :mod:`~.mlp`: HEAR's one-hidden-layer head, choices on a carved validation part
knn        :mod:`~.knn`: cosine k-nearest neighbours, ``k`` by inner grouped folds
=========  ==================================================================================

To add a probe: a module defining ``PROBE`` (a ``ProbeKind``; a fitted probe subclasses
``FittedProbe`` and writes ``settings``, ``fit`` and ``head``), one line in :data:`PROBES`, and
its test in ``tests/train/test_probes.py``. This package imports no torch (the settings check
names here); a kind's module loads when :func:`get_probe` first asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from soundtransfer.errors import ConfigError
from soundtransfer.lazy import registered

if TYPE_CHECKING:
    from soundtransfer.train.probes.base import Probe, ProbeKind

__all__ = ["PROBES", "fit_probe", "get_probe"]

#: Every probe: its name (``--set probe=NAME``, the run directory's mode) -> its module.
PROBES: dict[str, str] = {
    "linear": "soundtransfer.train.probes.linear",
    "logistic": "soundtransfer.train.probes.logistic",
    "mlp": "soundtransfer.train.probes.mlp",
    "knn": "soundtransfer.train.probes.knn",
}


def get_probe(name: str) -> ProbeKind:
    """The probe kind registered under ``name``.

    Raises:
        ConfigError: an unknown name (the known ones listed).
    """
    return cast("ProbeKind", registered(PROBES, name, "probe", "PROBE"))


def fit_probe(
    kind: str,
    x_train: Any,
    y_train: Any,
    groups_train: Any = None,
    seed: int = 0,
    *,
    num_classes: int | None = None,
    config: Any = None,
    device: Any = "cpu",
) -> Probe:
    """Fit a probe of ``kind`` on training embeddings only; every choice on inner splits.

    Args:
        kind: a fitted probe of :data:`PROBES` (``logistic``, ``mlp``, ``knn``).
        x_train: (N, D) embeddings of the training rows.
        y_train: (N,) class indices.
        groups_train: (N,) recording ids: inner folds and the validation part never split a
            group (e.g. ``Clip.group``); ``None``: rows are independent.
        seed: seeds the inner folds, initialisation and batch order (same seed, same probe).
        num_classes: K (default ``max(y) + 1``).
        config: the kind's settings (``LogisticConfig``, ``MLPConfig``, ``KNNConfig``;
            default: its defaults).
        device: where to fit.

    Returns:
        The fitted :class:`~soundtransfer.train.probes.base.Probe`; ``probe.info`` records
        the choices (C, epochs, k ...).
    """
    from soundtransfer.train.probes.base import FittedProbe

    probe = get_probe(kind)
    if not isinstance(probe, FittedProbe):
        raise ConfigError(f"probe {kind!r} is trained by the epoch loop, not fitted")
    return probe.fit_arrays(
        x_train, y_train, groups_train, seed, num_classes=num_classes, config=config, device=device
    )
