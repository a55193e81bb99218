"""Tasks: what a model's outputs mean and how they are scored (single-label, multi-label).

Wave 1 holds only the multi-label scoring parts (:mod:`soundtransfer.tasks.multilabel_metrics`,
:mod:`soundtransfer.tasks.thresholds`); the task interface itself comes with the registries
refactor, whose ``__init__`` replaces this one.
"""
