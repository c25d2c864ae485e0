"""The networks of the founding papers, built from scratch (no weights are downloaded).

- MISLNet-style patch network (Bayar & Stamm 2018, as used by Bennabhaktula, Alegre,
  Karastoyanova, Azzopardi, "Camera model identification based on forensic traces extracted
  from homogeneous patches", ESWA 2022): conv 7×7/2 (96) → conv 5×5 (64) → conv 5×5 (64) →
  conv 1×1 (128), each with batch norm, ReLU and 3×3/2 max-pool; FC → 1024 (tanh, dropout 0.3)
  → 200 (tanh) → classes. On 128×128 patches the flattened feature map has 2048 values.
- MobileNetV3-Small (timm, ``pretrained=False``) on whole frames, as in Bennabhaktula,
  Timmerman, Alegre, Azzopardi, "Source Camera Device Identification from Videos",
  SN Computer Science 3:316 (2022).
- The constrained first layer (Bayar & Stamm, "Constrained convolutional neural networks",
  TIFS 2018), extended to colour (Timmerman et al., arXiv 2012.06277): 3 filters 5×5 over RGB
  whose centre weight is fixed to −1 and whose other weights sum to 1, so that each filter
  outputs a prediction error (a high-pass residual) instead of scene content. The constraint
  is restored after every optimiser step by :func:`project_constrained_layers`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

NetworkName = Literal["mislnet", "mobilenetv3_small"]


class ConstrainedConv2d(nn.Conv2d):
    """A convolution whose filters are prediction-error filters (Bayar & Stamm 2018).

    For every output filter, the centre tap of the input channel with the same index is −1
    and all the other taps of that filter (over all input channels) sum to +1; so the filter
    predicts the centre pixel from its neighbourhood (and the other channels) and outputs
    the error. With 3 input and 3 output channels this is the colour extension of
    Timmerman et al. (arXiv 2012.06277).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, kernel_size: int = 5) -> None:
        if kernel_size % 2 != 1:
            raise ValueError("the constrained layer needs an odd kernel size (it has a centre tap)")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.project_()

    @torch.no_grad()
    def project_(self) -> None:
        """Re-impose the constraint in place: centre = −1, the other taps sum to 1."""
        weight = self.weight  # out × in × k × k
        centre = self.kernel_size[0] // 2
        mask = torch.ones_like(weight, dtype=torch.bool)
        for out_index in range(weight.shape[0]):
            mask[out_index, out_index % weight.shape[1], centre, centre] = False
        free = torch.where(mask, weight, torch.zeros_like(weight))
        sums = free.sum(dim=(1, 2, 3), keepdim=True)
        # A sum of exactly zero (e.g. all-zero weights) cannot be rescaled: spread evenly instead.
        n_free = mask[0].sum()
        safe = torch.where(sums.abs() < 1e-12, torch.ones_like(sums), sums)
        normalised = torch.where(sums.abs() < 1e-12, mask.float() / n_free, free / safe)
        weight.copy_(torch.where(mask, normalised, torch.full_like(weight, -1.0)))


def project_constrained_layers(module: nn.Module) -> None:
    """Restore the constraint of every :class:`ConstrainedConv2d` inside ``module`` (call after each step)."""
    for child in module.modules():
        if isinstance(child, ConstrainedConv2d):
            child.project_()


def _conv_block(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )


class MISLNet(nn.Module):
    """MISLNet-style patch classifier (see the module docstring for the papers).

    Parameters
    ----------
    n_classes : number of output classes.
    patch_size : side of the square input patch in pixels (128 in the paper).
    constrained : put a :class:`ConstrainedConv2d` (3 filters 5×5) in front.
    """

    def __init__(self, n_classes: int, *, patch_size: int = 128, constrained: bool = False) -> None:
        super().__init__()
        self.constrained = ConstrainedConv2d(3, 3, 5) if constrained else nn.Identity()
        self.features = nn.Sequential(
            _conv_block(3, 96, 7, stride=2),
            _conv_block(96, 64, 5),
            _conv_block(64, 64, 5),
            _conv_block(64, 128, 1),
        )
        with torch.no_grad():
            n_flat = int(self.features(torch.zeros(1, 3, patch_size, patch_size)).numel())
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_flat, 1024),
            nn.Tanh(),
            nn.Dropout(0.3),
            nn.Linear(1024, 200),
            nn.Tanh(),
            nn.Linear(200, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.constrained(x)))


class FrameNetwork(nn.Module):
    """MobileNetV3-Small (timm, random initialisation) on whole frames, optional constrained layer."""

    def __init__(self, n_classes: int, *, constrained: bool = False, width: float = 1.0) -> None:
        super().__init__()
        import timm  # imported here: timm is slow to import and only this network needs it

        name = {1.0: "mobilenetv3_small_100", 0.75: "mobilenetv3_small_075", 0.5: "mobilenetv3_small_050"}.get(width)
        if name is None:
            raise ValueError("width must be 1.0, 0.75 or 0.5 (the timm MobileNetV3-Small variants)")
        self.constrained = ConstrainedConv2d(3, 3, 5) if constrained else nn.Identity()
        self.backbone = timm.create_model(name, pretrained=False, num_classes=n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.constrained(x))


def build_network(
    name: NetworkName, n_classes: int, *, patch_size: int = 128, constrained: bool = False, width: float = 1.0
) -> nn.Module:
    """The network called ``name`` ("mislnet" on patches, "mobilenetv3_small" on frames), untrained."""
    if n_classes < 2:
        raise ValueError("a classifier needs at least 2 classes")
    if name == "mislnet":
        return MISLNet(n_classes, patch_size=patch_size, constrained=constrained)
    if name == "mobilenetv3_small":
        return FrameNetwork(n_classes, constrained=constrained, width=width)
    raise ValueError(f"unknown network {name!r}: use 'mislnet' or 'mobilenetv3_small'")
