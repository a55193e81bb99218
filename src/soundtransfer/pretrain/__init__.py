"""SimCLR pre-training: view augmentation, NT-Xent, LARS, and the (distributed) loop.

Public names load on first use (:mod:`soundtransfer.lazy`): the settings
(:mod:`~soundtransfer.pretrain.config`) import no torch, the rest imports torch and kornia.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports

if TYPE_CHECKING:
    from soundtransfer.pretrain.augment import BatchAugment, SimCLRTransform
    from soundtransfer.pretrain.config import PRESETS, PretrainConfig, get_preset
    from soundtransfer.pretrain.lars import LARS, lars_param_groups, lr_at_step, scaled_lr
    from soundtransfer.pretrain.loop import SimCLRModel, pretrain, projection_head, save_encoder
    from soundtransfer.pretrain.ntxent import NTXentLoss, nt_xent, nt_xent_gathered

if not TYPE_CHECKING:  # type checkers see the imports above, so a typo stays an error
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "soundtransfer.pretrain.augment": ("BatchAugment", "SimCLRTransform"),
            "soundtransfer.pretrain.config": ("PRESETS", "PretrainConfig", "get_preset"),
            "soundtransfer.pretrain.lars": ("LARS", "lars_param_groups", "lr_at_step", "scaled_lr"),
            "soundtransfer.pretrain.loop": (
                "SimCLRModel",
                "pretrain",
                "projection_head",
                "save_encoder",
            ),
            "soundtransfer.pretrain.ntxent": ("NTXentLoss", "nt_xent", "nt_xent_gathered"),
        },
    )

__all__ = [
    "LARS",
    "PRESETS",
    "BatchAugment",
    "NTXentLoss",
    "PretrainConfig",
    "SimCLRModel",
    "SimCLRTransform",
    "get_preset",
    "lars_param_groups",
    "lr_at_step",
    "nt_xent",
    "nt_xent_gathered",
    "pretrain",
    "projection_head",
    "save_encoder",
    "scaled_lr",
]
