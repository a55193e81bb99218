"""Figures (loss curves, t-SNE, confusion) and result tables beside the paper's numbers.

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, ``soundtransfer.analysis.plot_tsne`` imports matplotlib and torch.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports

if TYPE_CHECKING:
    from soundtransfer.analysis.figures import (
        block4_features,
        plot_confusion,
        plot_loss_curves,
        plot_spectrograms,
        plot_tsne,
    )
    from soundtransfer.analysis.report import make_figures, tsne_figure
    from soundtransfer.analysis.tables import PAPER, Row, collect_results, results_table

if not TYPE_CHECKING:  # type checkers see the imports above, so a typo stays an error
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "soundtransfer.analysis.figures": (
                "block4_features",
                "plot_confusion",
                "plot_loss_curves",
                "plot_spectrograms",
                "plot_tsne",
            ),
            "soundtransfer.analysis.report": ("make_figures", "tsne_figure"),
            "soundtransfer.analysis.tables": ("PAPER", "Row", "collect_results", "results_table"),
        },
    )

__all__ = [
    "PAPER",
    "Row",
    "block4_features",
    "collect_results",
    "make_figures",
    "plot_confusion",
    "plot_loss_curves",
    "plot_spectrograms",
    "plot_tsne",
    "results_table",
    "tsne_figure",
]
