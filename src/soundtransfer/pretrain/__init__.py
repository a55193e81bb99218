"""SimCLR pre-training: view augmentation, NT-Xent, LARS, and the (distributed) loop.

Public names load on first use (:mod:`soundtransfer.lazy`): the settings
(:mod:`~soundtransfer.pretrain.config`) import no torch, the rest imports torch and kornia.
"""

from typing import TYPE_CHECKING

from soundtransfer.lazy import lazy_exports, type_checking_imports

if TYPE_CHECKING:
    from soundtransfer.pretrain.augment import BatchAugment, SimCLRTransform
    from soundtransfer.pretrain.config import PRESETS, PretrainConfig, get_preset
    from soundtransfer.pretrain.lars import LARS, lars_param_groups, lr_at_step, scaled_lr
    from soundtransfer.pretrain.loop import SimCLRModel, pretrain, projection_head, save_encoder
    from soundtransfer.pretrain.ntxent import NTXentLoss, nt_xent, nt_xent_gathered
else:
    __getattr__, __dir__ = lazy_exports(__name__, type_checking_imports(__file__))
