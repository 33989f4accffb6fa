"""Small Conv-BN-ReLU plain networks and ResNets for the gradient-norm probes (papers 000 and 003).

Every network is a :class:`BlockNet`: a 3 x 3 stem convolution, a sequence of blocks (``net.blocks``, each with a
``kind``: ``"plain"``, ``"identity"`` or ``"transition"``), then batch norm + ReLU (residual nets only), global average
pooling and a linear readout. The gradient-norm ratio of a block is ``||dE/dx_in|| / ||dE/dx_out||``.

- :class:`ConvBNReLU`: paper 000's module (Fig. 1), ``x -> relu(bn(conv(x)))``; a stride-2, channel-doubling one is
  a plain net's transition.
- :class:`PreActBlock`: an identity-skip residual block ``x + F(x)``, ``F = conv(relu(bn(conv(relu(bn(x))))))`` (the
  pre-activation form, so the skip is exactly the identity as in paper 003, eqn. 1).
- :class:`ProjectionTransition`: the original ResNet transition (paper 003, Fig. 1c): a strided residual branch and
  a strided ``1 x 1`` projection as the skip; not norm-preserving in general.
- :class:`ProcrustesTransition`: paper 003's norm-preserving transition (Fig. 1d): a ``1 x 1`` stride-2 convolution
  ``conv*`` whose channel matrix is kept at singular values ``sqrt(c_out / c_in)`` by :func:`validate.procrustes_`
  (then the expected gradient norm is preserved, paper 003 eqn. 7; the target scaling of the authors' code), followed
  by an identity-skip :class:`PreActBlock`. Call :meth:`ProcrustesTransition.project_` every ``T`` training steps.
"""

from __future__ import annotations

import math

from torch import nn

from validate.init import procrustes_

__all__ = ["BlockNet", "ConvBNReLU", "PreActBlock", "ProjectionTransition", "ProcrustesTransition", "plain_net",
           "resnet", "VARIANTS", "build_variant"]


class ConvBNReLU(nn.Module):
    """``relu(bn(conv3x3(x)))`` (paper 000, Fig. 1); ``kind`` is ``"transition"`` when it changes the shape."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()
        self.kind = "transition" if (stride != 1 or c_in != c_out) else "plain"

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class PreActBlock(nn.Module):
    """Identity-skip residual block ``x + F(x)`` with ``F = conv(relu(bn(conv(relu(bn(x))))))``."""

    kind = "identity"

    def __init__(self, channels: int):
        super().__init__()
        self.branch = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=False))

    def forward(self, x):
        return x + self.branch(x)


class ProjectionTransition(nn.Module):
    """ResNet transition: strided pre-activation branch plus a strided ``1 x 1`` projection skip."""

    kind = "transition"

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.branch = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False))
        self.skip = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)

    def forward(self, x):
        return self.skip(x) + self.branch(x)


class ProcrustesTransition(nn.Module):
    """ProcResNet transition (paper 003, Fig. 1d): ``conv*`` (``1 x 1``, stride 2) then an identity block."""

    kind = "transition"

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.projected = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)
        self.block = PreActBlock(c_out)
        self.target = math.sqrt(c_out / c_in)

    def forward(self, x):
        return self.block(self.projected(x))

    def project_(self) -> None:
        """Procrustes projection of ``conv*`` to singular values ``target`` (in place, no gradient)."""
        procrustes_(self.projected, 1, target=self.target)


class BlockNet(nn.Module):
    """Stem convolution, ``blocks``, optional final BN + ReLU, global average pooling, linear readout."""

    def __init__(self, in_channels: int, stem_channels: int, blocks: list[nn.Module], out_channels: int,
                 num_classes: int, final_norm: bool):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False)
        self.blocks = nn.ModuleList(blocks)
        self.final = nn.Sequential(nn.BatchNorm2d(out_channels), nn.ReLU()) if final_norm else nn.Identity()
        self.readout = nn.Linear(out_channels, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.readout(self.final(x).mean(dim=(2, 3)))

    def project_(self) -> int:
        """Apply :meth:`ProcrustesTransition.project_` to every such block; returns how many were projected."""
        count = 0
        for block in self.blocks:
            if isinstance(block, ProcrustesTransition):
                block.project_()
                count += 1
        return count


def _stages(widths, per_stage: int):
    for s, width in enumerate(widths):
        for b in range(per_stage):
            yield s, b, width


def plain_net(in_channels: int, num_classes: int, per_stage: int = 3, widths=(16, 32, 64)) -> BlockNet:
    """Plain Conv-BN-ReLU network (paper 000): ``per_stage`` modules per stage, stride 2 between stages."""
    blocks, prev = [], widths[0]
    for s, b, width in _stages(widths, per_stage):
        blocks.append(ConvBNReLU(prev, width, stride=2 if (s > 0 and b == 0) else 1))
        prev = width
    return BlockNet(in_channels, widths[0], blocks, widths[-1], num_classes, final_norm=False)


def resnet(in_channels: int, num_classes: int, per_stage: int = 3, widths=(16, 32, 64),
           transition: str = "projection") -> BlockNet:
    """Pre-activation ResNet with ``per_stage`` blocks per stage; ``transition`` is ``"projection"`` (ResNet) or
    ``"procrustes"`` (ProcResNet, paper 003). Procrustes transitions are projected at construction."""
    if transition not in ("projection", "procrustes"):
        raise ValueError(f"transition must be 'projection' or 'procrustes', got {transition!r}")
    blocks, prev = [], widths[0]
    for s, b, width in _stages(widths, per_stage):
        if s > 0 and b == 0:
            blocks.append(ProjectionTransition(prev, width) if transition == "projection"
                          else ProcrustesTransition(prev, width))
        else:
            blocks.append(PreActBlock(width))
        prev = width
    net = BlockNet(in_channels, widths[0], blocks, widths[-1], num_classes, final_norm=True)
    net.project_()
    return net


VARIANTS = ("plain", "resnet", "procresnet", "plain-modulated")


def build_variant(variant: str, in_channels: int, num_classes: int, per_stage: int, widths=(16, 32, 64)) -> BlockNet:
    """The network of a gradnorm variant (``plain-modulated`` is the plain net; modulation is added in training)."""
    if variant in ("plain", "plain-modulated"):
        return plain_net(in_channels, num_classes, per_stage, widths)
    if variant == "resnet":
        return resnet(in_channels, num_classes, per_stage, widths, "projection")
    if variant == "procresnet":
        return resnet(in_channels, num_classes, per_stage, widths, "procrustes")
    raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
