"""Image classifiers for the experiments: CIFAR ResNets and a small CPU-friendly CNN.

``resnet32`` is the network of the long-tailed CIFAR literature (He et al. 2016, used by
:cite:`cui2019classbalanced` and :cite:`cao2019ldam`): a 3x3 stem, three stages of ``n`` basic
blocks with 16/32/64 channels, option-A (parameter-free) shortcuts, global average pooling and a
linear classifier, 6n + 2 weighted layers (n = 5 gives ResNet-32, n = 3 gives ResNet-20).
Convolutions and the classifier use Kaiming-normal initialisation, as in LDAM-DRW's code.

Every builder accepts ``prior``: when given, the classifier bias starts at
:math:`b = -\\log((1-\\pi)/\\pi)`, so that each class's sigmoid output starts near :math:`\\pi`
(RetinaNet's initialisation for sigmoid focal loss, :cite:`lin2017focal`).

The models are plain ``nn.Module`` s, so ``model.to(memory_format=torch.channels_last)`` works.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MODELS", "build_model", "resnet20", "resnet32", "small_cnn", "prior_bias", "FloatLinear"]

#: Names accepted by :func:`build_model`.
MODELS = ("resnet20", "resnet32", "small-cnn")


def prior_bias(prior: float) -> float:
    """Return the logit bias whose sigmoid equals ``prior``.

    .. math:: b = -\\log\\frac{1-\\pi}{\\pi}

    Args:
        prior: the probability :math:`\\pi` in (0, 1), e.g. 0.01 as in RetinaNet.

    Returns:
        The bias :math:`b` (a Python float).

    Example:
        >>> round(prior_bias(0.01), 4)
        -4.5951
        >>> prior_bias(0.5)
        0.0
    """
    if isinstance(prior, bool) or not isinstance(prior, (int, float)):
        raise TypeError(f"prior must be a float in (0, 1), got {type(prior).__name__}")
    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must be in the open interval (0, 1), got {prior}")
    return -math.log((1.0 - prior) / prior)


def _check_sizes(num_classes: int, in_channels: int) -> None:
    for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _init_weights(model: nn.Module, prior: float | None) -> None:
    """Kaiming-normal conv/linear weights (LDAM-DRW's ``_weights_init``), optional prior bias."""
    bias = None if prior is None else prior_bias(prior)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
    if bias is not None:
        nn.init.constant_(model.fc.bias, bias)


class FloatLinear(nn.Linear):
    """A linear classifier that computes in float32 even under autocast, so that logits keep float32's 24-bit
    mantissa.

    Under ``torch.autocast(dtype=torch.bfloat16)`` a plain ``nn.Linear`` returns bfloat16 logits (8-bit mantissa): the
    loss, top-1, ECE, temperature scaling and the saved logits would all inherit that rounding, and ties in ``argmax``
    go to the lower class index, which in a long-tailed study is a head class. The features may arrive in bfloat16;
    the layer casts them up and runs its matrix product in float32 (a 64×C product: no measurable cost).

    Example:
        >>> fc = FloatLinear(4, 3)
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     fc(torch.randn(2, 4, dtype=torch.bfloat16)).dtype
        torch.float32
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        with torch.autocast(input.device.type, enabled=False):
            return F.linear(input.float(), self.weight.float(), None if self.bias is None else self.bias.float())


class _ShortcutA(nn.Module):
    """Option-A shortcut: subsample spatially by ``stride`` and zero-pad the new channels."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        extra = planes - in_planes
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity or option-A shortcut (He et al. 2016)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut: nn.Module = _ShortcutA(in_planes, planes, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet with ``blocks`` basic blocks per stage (16/32/64 channels).

    Args:
        blocks: basic blocks per stage (5 for ResNet-32, 3 for ResNet-20).
        num_classes: number of output logits.
        in_channels: input image channels.
    """

    def __init__(self, blocks: int, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            stage = []
            for i in range(blocks):
                stage.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = FloatLinear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def _resnet(blocks: int, num_classes: int, in_channels: int, prior: float | None) -> CifarResNet:
    _check_sizes(num_classes, in_channels)
    model = CifarResNet(blocks, num_classes, in_channels)
    _init_weights(model, prior)
    return model


def resnet20(num_classes: int = 10, in_channels: int = 3, prior: float | None = None) -> CifarResNet:
    """CIFAR ResNet-20 (3 stages x 3 basic blocks, 16/32/64 channels, option-A shortcuts).

    Args:
        num_classes: number of output logits.
        in_channels: input image channels (3 for CIFAR, 1 for Fashion-MNIST).
        prior: if given, initialise the classifier bias to :math:`-\\log((1-\\pi)/\\pi)`.

    Returns:
        The model (about 0.27M parameters for 10 classes).

    Example:
        >>> model = resnet20(num_classes=10)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    return _resnet(3, num_classes, in_channels, prior)


def resnet32(num_classes: int = 10, in_channels: int = 3, prior: float | None = None) -> CifarResNet:
    """CIFAR ResNet-32 of the long-tailed benchmarks (3 stages x 5 basic blocks).

    16/32/64 channels, option-A shortcuts (stride-2 subsampling plus zero channels), Kaiming-normal
    initialisation; 464,154 parameters for 10 classes.

    Args:
        num_classes: number of output logits.
        in_channels: input image channels (3 for CIFAR, 1 for Fashion-MNIST).
        prior: if given, initialise the classifier bias to :math:`-\\log((1-\\pi)/\\pi)`.

    Returns:
        The model.

    Example:
        >>> model = resnet32(num_classes=10, prior=0.01)
        >>> sum(p.numel() for p in model.parameters())
        464154
        >>> round(model.fc.bias[0].item(), 3)
        -4.595
    """
    return _resnet(5, num_classes, in_channels, prior)


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU layers (16/32/64 channels, 2x2 max-pools after the first two), global
    average pooling and a linear classifier; works for any input size of at least 4x4."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(in_channels, 16),
            nn.MaxPool2d(2),
            *block(16, 32),
            nn.MaxPool2d(2),
            *block(32, 64),
        )
        self.fc = FloatLinear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.fc(out)


def small_cnn(num_classes: int = 10, in_channels: int = 1, prior: float | None = None) -> SmallCNN:
    """A small CNN for the CPU profiles (Fashion-MNIST, synthetic data).

    Args:
        num_classes: number of output logits.
        in_channels: input image channels.
        prior: if given, initialise the classifier bias to :math:`-\\log((1-\\pi)/\\pi)`.

    Returns:
        The model (24,058 parameters for 1 input channel and 10 classes).

    Example:
        >>> model = small_cnn(num_classes=10, in_channels=1)
        >>> model(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 10])
    """
    _check_sizes(num_classes, in_channels)
    model = SmallCNN(num_classes, in_channels)
    _init_weights(model, prior)
    return model


_BUILDERS = {"resnet20": resnet20, "resnet32": resnet32, "small-cnn": small_cnn}


def build_model(name: str, num_classes: int, in_channels: int, prior: float | None = None) -> nn.Module:
    """Build a model by name (one of :data:`MODELS`).

    Args:
        name: ``"resnet20"``, ``"resnet32"`` or ``"small-cnn"``.
        num_classes: number of output logits.
        in_channels: input image channels.
        prior: optional prior :math:`\\pi` for the classifier bias (see :func:`prior_bias`).

    Returns:
        A freshly initialised ``nn.Module``.

    Example:
        >>> build_model("small-cnn", num_classes=3, in_channels=3)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 3])
    """
    if name not in _BUILDERS:
        raise ValueError(f"model name must be one of {MODELS}, got {name!r}")
    return _BUILDERS[name](num_classes=num_classes, in_channels=in_channels, prior=prior)
