"""Figures (loss curves, t-SNE, confusion), result tables beside the paper's numbers, and the
statistics over folds every table carries (sample std, 95 % CI, paired tests).

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
    from soundtransfer.analysis.stats import (
        Paired,
        ProtocolSummary,
        Summary,
        format_pvalue,
        format_summary,
        paired_comparison,
        protocol_summary,
        sign_flip_pvalue,
        summarize,
        t_interval,
    )
    from soundtransfer.analysis.tables import (
        PAPER,
        ProtocolRow,
        Row,
        collect_protocol,
        collect_results,
        paired_rows,
        paired_table,
        protocol_table,
        results_table,
        write_tables,
    )

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
            "soundtransfer.analysis.stats": (
                "Paired",
                "ProtocolSummary",
                "Summary",
                "format_pvalue",
                "format_summary",
                "paired_comparison",
                "protocol_summary",
                "sign_flip_pvalue",
                "summarize",
                "t_interval",
            ),
            "soundtransfer.analysis.tables": (
                "PAPER",
                "ProtocolRow",
                "Row",
                "collect_protocol",
                "collect_results",
                "paired_rows",
                "paired_table",
                "protocol_table",
                "results_table",
                "write_tables",
            ),
        },
    )

__all__ = [
    "PAPER",
    "Paired",
    "ProtocolRow",
    "ProtocolSummary",
    "Row",
    "Summary",
    "block4_features",
    "collect_protocol",
    "collect_results",
    "format_pvalue",
    "format_summary",
    "make_figures",
    "paired_comparison",
    "paired_rows",
    "paired_table",
    "plot_confusion",
    "plot_loss_curves",
    "plot_spectrograms",
    "plot_tsne",
    "protocol_summary",
    "protocol_table",
    "results_table",
    "sign_flip_pvalue",
    "summarize",
    "t_interval",
    "tsne_figure",
    "write_tables",
]
