"""``soundtransfer linear-eval``: frozen encoder, only the linear head trained."""

from __future__ import annotations

from typing import Any

from soundtransfer.cli.finetune import register_mode


def register(sub: Any) -> None:
    register_mode(
        sub,
        "linear_eval",
        "linear evaluation: encoder frozen, only the FC layer trained (cached embeddings)",
        "The paper's Table 2 protocol: f(.) frozen, g(.) trained with the same optimiser on "
        "each fold held out in turn (official folds or your own data, as for finetune). "
        "The frozen features are extracted once per clip "
        "and cached, so training takes seconds; runs resume and are reused like fine-tuning's. "
        "Stronger probes on the same embeddings: --set probe=logistic (converged logistic "
        "regression, C chosen on inner folds of the training clips grouped by recording) or "
        "--set probe=mlp (one hidden layer, early stopping on a validation part of the "
        "training clips); each writes its runs under <out>/<dataset>/<weights>/<probe>/.",
    )
