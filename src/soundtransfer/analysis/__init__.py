"""Figures (loss curves, t-SNE, confusion), result tables beside the paper's numbers, and the
statistics over folds every table carries (sample std, 95 % CI, paired tests)."""

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
