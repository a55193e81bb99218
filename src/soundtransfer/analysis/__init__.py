"""Figures (loss curves, t-SNE, confusion), result tables beside the paper's numbers, and the
statistics over folds every table carries (sample std, 95 % CI, paired tests).

Public names load on first use (:mod:`soundtransfer.lazy`): importing the package costs
nothing, ``soundtransfer.analysis.plot_tsne`` imports matplotlib and torch.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports, type_checking_imports

if TYPE_CHECKING:
    from soundtransfer.analysis.confusion import (
        class_results,
        confusion_counts,
        confusion_csv,
        confusion_markdown,
        top_confusions,
    )
    from soundtransfer.analysis.figures import (
        SplitCurves,
        block4_features,
        confusion_figure,
        plot_confusion,
        plot_loss_curves,
        plot_spectrograms,
        plot_training_curves,
        plot_tsne,
        save_figure,
        training_curves_figure,
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
else:
    __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))
