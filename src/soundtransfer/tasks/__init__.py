"""Tasks: what a model's outputs mean, one entry per task (the task axis).

A task decides the output activation (softmax, sigmoid), the loss, the targets' form (class
indices, multi-hot rows), the metrics and the primary metric that summaries print and
``select=best_val`` uses. The training loop, the probes' evaluation and the bundles ask the
run's task (``TrainConfig.task``), never a task's name.

==============  ===========================================================================
name            module
==============  ===========================================================================
single_label    :mod:`soundtransfer.tasks.single_label`: softmax, cross-entropy, accuracy
multi_label     :mod:`soundtransfer.tasks.multi_label`: sigmoid, binary cross-entropy, mAP
==============  ===========================================================================

To add a task: a module defining ``TASK``, an instance of :class:`~soundtransfer.tasks.base.Task`
(its ``name`` also what bundles record in ``BundleMeta.task``), one line in :data:`TASKS`, and
its test in ``tests/tasks/``. The multi-label scoring parts live beside them
(:mod:`soundtransfer.tasks.multilabel_metrics`, :mod:`soundtransfer.tasks.thresholds`).
This package imports no torch (the settings check names here);
a task's module loads when :func:`get_task` first asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from soundtransfer.lazy import registered

if TYPE_CHECKING:
    from soundtransfer.tasks.base import Task

__all__ = ["DEFAULT_TASK", "TASKS", "get_task"]

#: Every task: its name -> the module defining ``TASK``.
TASKS: dict[str, str] = {
    "single_label": "soundtransfer.tasks.single_label",
    "multi_label": "soundtransfer.tasks.multi_label",
}
DEFAULT_TASK = "single_label"


def get_task(name: str) -> Task:
    """The task registered under ``name``.

    Raises:
        ConfigError: an unknown name (the known ones listed).
    """
    return cast("Task", registered(TASKS, name, "task", "TASK"))
