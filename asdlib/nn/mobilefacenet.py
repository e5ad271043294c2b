"""MobileFaceNet (Chen et al., 2018), the classifier backbone of STgram-MFN and TASTgram-MFN.

A stack of inverted-residual bottlenecks on the ``(B, C, F, T)`` input maps, a global depthwise conv (GDC)
whose kernel covers the whole final feature map ((8, 20) for 128 × 313 inputs), and a linear 1×1 conv to a
D = 128 embedding. Two bottleneck tables were published with the ASD models: ``"paper"``, the original
15-block table that produced the ICASSP 2022 STgram-MFN numbers (STgram-MFN repository, ``model.py``), and
``"dcase2022"``, the 6-block table of the current STgram-MFN and Noisy-ArcMix code (``net.py``,
``model/net.py``). Module names follow the original code (``conv1``, ``dw_conv1``, ``blocks``, ``conv2``,
``linear1``, ``fc_out``) except ``gdc`` (was ``linear7``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

# (t, c, n, s): expansion factor, output channels, repeats, stride of the first repeat
BOTTLENECK_TABLES: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "paper": ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1)),
    "dcase2022": ((2, 128, 2, 2), (4, 128, 2, 2), (4, 128, 2, 2)),
}


class ConvBlock(nn.Module):
    """Conv2d (no bias) + BatchNorm + per-channel PReLU (no PReLU when ``linear``); depthwise when ``dw``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, *,
                 dw: bool = False, linear: bool = False):
        super().__init__()
        groups = in_channels if dw else 1
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.prelu = None if linear else nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    """Inverted residual: 1×1 expand (in × t) → 3×3 depthwise (stride) → 1×1 linear projection (+ skip)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def _strided(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # a 3×3 conv with padding 1


def gdc_kernel(input_size: tuple[int, int], table: str = "dcase2022") -> tuple[int, int]:
    """Final feature-map size = GDC kernel for an ``(F, T)`` input: ``(128, 313) -> (8, 20)``."""
    f, t = _strided(input_size[0], 2), _strided(input_size[1], 2)  # conv1
    for _, _, _, s in BOTTLENECK_TABLES[table]:
        f, t = _strided(f, s), _strided(t, s)
    return f, t


class MobileFaceNet(nn.Module):
    """``(B, C, F, T) -> (B, D)`` embedding. ``fc_out`` is kept only for weight/parameter-count compatibility.

    The original classifier ``fc_out`` (D → K) is never used in forward: the model's ArcFace / softmax head
    replaces it, as in the original code with ArcFace on.
    """

    def __init__(self, in_channels: int, input_size: tuple[int, int], *, table: str = "dcase2022",
                 embedding_dim: int = 128, num_classes: int = 41):
        super().__init__()
        if table not in BOTTLENECK_TABLES:
            raise ValueError(f"unknown bottleneck table {table!r}; "
                             f"expected one of {', '.join(BOTTLENECK_TABLES)}")
        self.table, self.input_size = table, tuple(input_size)
        self.conv1 = ConvBlock(in_channels, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, dw=True)
        self.blocks = nn.Sequential(*self._bottlenecks(64, BOTTLENECK_TABLES[table]))
        self.conv2 = ConvBlock(self.blocks[-1].conv[-1].num_features, 512, 1, 1, 0)
        self.gdc = ConvBlock(512, 512, gdc_kernel(input_size, table), 1, 0, dw=True, linear=True)
        self.linear1 = ConvBlock(512, embedding_dim, 1, 1, 0, linear=True)
        self.fc_out = nn.Linear(embedding_dim, num_classes)  # unused (see class docstring)
        self._init_weights()

    @staticmethod
    def _bottlenecks(in_channels: int, table) -> list[Bottleneck]:
        layers = []
        for t, c, n, s in table:
            for i in range(n):
                layers.append(Bottleneck(in_channels, c, s if i == 0 else 1, t))
                in_channels = c
        return layers

    def _init_weights(self) -> None:
        for m in self.modules():  # the original init: He-normal on fan-out for convs, identity BN
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv1(self.conv1(x))  # (B, 64, F/2, T/2)
        x = self.conv2(self.blocks(x))  # (B, 512, 8, 20) at 128 × 313
        x = self.linear1(self.gdc(x))  # (B, D, 1, 1)
        return x.flatten(1)  # (B, D)
