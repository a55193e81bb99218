"""The run toolkit shared by fine-tuning, linear evaluation and pre-training.

- :mod:`~soundtransfer.runs.rundir`: the run directory (layout, listing, parsing) and its
  identity (:func:`open_run`: new, resume or done; another identity is an error).
- :mod:`~soundtransfer.runs.files`: atomic writes (text, torch, any writer, an open file), a
  full disk as one error naming the file, outputs that are inputs refused.
- :mod:`~soundtransfer.runs.records`: run files read back and checked (``final.json``,
  ``metrics.jsonl``, ``config.json``, cached arrays): a damaged one is an error naming it.
- :mod:`~soundtransfer.runs.log`: the JSON-lines metrics log, optional TensorBoard.
- :mod:`~soundtransfer.runs.checkpoint`: checkpoints with every rank's RNG state, loaded with
  ``weights_only=True``; the non-finite loss guard.
- :mod:`~soundtransfer.runs.precision`: autocast / grad scaler / channels_last policy.

Which device and rank a process has is decided in :mod:`soundtransfer.distributed`.

Public names load on first use (:mod:`soundtransfer.lazy`): atomic writes import no torch.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports, type_checking_imports

if TYPE_CHECKING:
    from soundtransfer.runs.checkpoint import (
        check_finite,
        load_checkpoint,
        load_tensors,
        save_checkpoint,
    )
    from soundtransfer.runs.files import (
        atomic_open,
        atomic_torch_save,
        atomic_write,
        atomic_write_text,
        refuse_input_as_output,
        reporting_disk_full,
    )
    from soundtransfer.runs.log import MetricsLog
    from soundtransfer.runs.precision import Precision
    from soundtransfer.runs.records import load_array, read_final, read_jsonl, read_metrics
    from soundtransfer.runs.rundir import (
        RunRef,
        RunStatus,
        cell_dir,
        describe_changes,
        list_runs,
        open_run,
        parse_run_dir,
        run_dir,
    )
else:
    __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))
