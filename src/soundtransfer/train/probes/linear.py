"""``probe=linear`` (the default): the paper's linear evaluation, the FC layer g trained by the
epoch loop with the run's optimiser, schedule and epochs on the cached frozen embeddings
(standardised with training statistics, folded into the layer afterwards)."""

from __future__ import annotations

from torch import nn

from soundtransfer.models.heads import fold_standardisation
from soundtransfer.train.loop import fit
from soundtransfer.train.modes import Job, Trained, linear_context
from soundtransfer.train.probes.base import ProbeKind

__all__ = ["PROBE", "LinearProbe"]


class LinearProbe(ProbeKind):
    """The FC layer trained by :func:`soundtransfer.train.loop.fit` (paper, section 4)."""

    name = "linear"

    def train(self, job: Job) -> Trained:
        ctx, mu, sd, cache = linear_context(job)
        result = fit(ctx)
        head = job.model.head
        assert isinstance(head, nn.Linear)
        fold_standardisation(head, mu, sd)
        result["embedding_cache"] = str(cache)
        return Trained(result, {"kind": "linear"})


PROBE = LinearProbe()
