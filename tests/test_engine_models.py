"""Tests for focal.engine.models: architecture sizes, option-A shortcuts, initialisation, prior bias."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from focal.engine.models import MODELS, build_model, prior_bias, resnet20, resnet32, small_cnn
from focal.engine.models import _ShortcutA


def cifar_resnet_parameters(blocks: int, num_classes: int, in_channels: int) -> int:
    """He et al.'s CIFAR ResNet counted by hand: 3x3 convs without bias, BN = 2 params per channel."""
    conv = lambda cin, cout: 9 * cin * cout  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    total = conv(in_channels, 16) + bn(16)
    cin = 16
    for width in (16, 32, 64):
        for _ in range(blocks):  # option-A shortcuts add no parameters
            total += conv(cin, width) + bn(width) + conv(width, width) + bn(width)
            cin = width
    return total + 64 * num_classes + num_classes


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("num_classes", [10, 100])
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("builder, blocks", [(resnet20, 3), (resnet32, 5)])
def test_resnet_parameter_count(builder, blocks, num_classes, in_channels):
    assert n_params(builder(num_classes, in_channels)) == cifar_resnet_parameters(blocks, num_classes, in_channels)


def test_resnet32_is_the_published_size():
    model = resnet32(10)
    assert n_params(model) == 464_154  # 0.46 M, as published
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == 32  # 6n + 2 weighted layers, n = 5
    assert [m.out_channels for m in convs[1:]] == [16] * 10 + [32] * 10 + [64] * 10
    assert [len(stage) for stage in (model.layer1, model.layer2, model.layer3)] == [5, 5, 5]


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 8, 8)
    shortcut = _ShortcutA(16, 32, stride=2)
    out = shortcut(x)
    assert out.shape == (2, 32, 4, 4) and not list(shortcut.parameters())
    torch.testing.assert_close(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0
    shortcuts = [m for m in resnet32().modules() if isinstance(m, _ShortcutA)]
    assert len(shortcuts) == 2  # at the two stage transitions only


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("in_channels, size", [(1, 28), (3, 32)])
def test_forward_backward_shapes(name, in_channels, size):
    torch.manual_seed(0)
    model = build_model(name, 7, in_channels)
    x = torch.randn(4, in_channels, size, size)
    logits = model(x)
    assert logits.shape == (4, 7)
    logits.logsumexp(1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_channels_last_gives_the_same_output(name):
    torch.manual_seed(0)
    model = build_model(name, 10, 3).eval()
    x = torch.randn(2, 3, 32, 32)
    reference = model(x)
    model = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last)), reference,
                               rtol=1e-4, atol=1e-4)


def test_kaiming_normal_init():
    torch.manual_seed(0)
    model = resnet32(10)
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.numel() >= 9 * 32 * 64]
    for w in weights:  # fan_in mode, gain sqrt(2): std = sqrt(2 / fan_in)
        fan_in = w[0].numel()
        assert abs(w.std().item() / math.sqrt(2 / fan_in) - 1) < 0.05
        assert abs(w.mean().item()) < 0.05 * math.sqrt(2 / fan_in)
    fc = model.fc.weight
    assert abs(fc.std().item() / math.sqrt(2 / 64) - 1) < 0.15


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("prior", [0.01, 0.2])
def test_prior_initialises_the_classifier_bias(name, prior):
    model = build_model(name, 10, 3, prior=prior)
    torch.testing.assert_close(torch.sigmoid(model.fc.bias), torch.full((10,), prior))
    assert model.fc.bias[0].item() == pytest.approx(-math.log((1 - prior) / prior))
    default = build_model(name, 10, 3)
    assert default.fc.bias.std() > 0  # untouched without a prior


@pytest.mark.parametrize("prior, error", [(0.0, ValueError), (1.0, ValueError), (-0.5, ValueError),
                                          ("0.01", TypeError), (True, TypeError)])
def test_prior_rejects_bad_values(prior, error):
    with pytest.raises(error, match="prior"):
        resnet32(10, prior=prior)
    with pytest.raises(error, match="prior"):
        prior_bias(prior)


def test_same_seed_same_init():
    torch.manual_seed(3)
    a = small_cnn(10, 1)
    torch.manual_seed(3)
    b = small_cnn(10, 1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("kwargs, error", [(dict(name="resnet-32"), ValueError), (dict(num_classes=0), ValueError),
                                           (dict(in_channels=3.0), TypeError)])
def test_build_model_rejects_bad_arguments(kwargs, error):
    args = dict(name="resnet32", num_classes=10, in_channels=3) | kwargs
    with pytest.raises(error, match=next(iter(kwargs)).replace("name", "model name")):
        build_model(**args)


def test_small_cnn_is_small():
    assert n_params(small_cnn(10, 1)) == 24_058
    assert n_params(small_cnn(10, 1)) < n_params(resnet20(10, 1)) / 10


def test_logits_are_float32_under_bfloat16_autocast():
    """The classifier computes in float32 under autocast: no bfloat16 rounding of the logits, so two classes closer
    than bfloat16's resolution keep their order (a plain Linear rounds both to one value and argmax picks the lower
    index, the head class); the whole model's output is float32."""
    from focal.engine.models import FloatLinear

    x = torch.ones(1, 1, dtype=torch.bfloat16)
    plain, head = nn.Linear(1, 2, bias=False), FloatLinear(1, 2, bias=False)
    with torch.no_grad():
        for layer in (plain, head):
            layer.weight.copy_(torch.tensor([[100.0], [100.2]]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rounded, exact = plain(x), head(x)
    assert rounded.dtype == torch.bfloat16 and rounded.argmax(1).item() == 0, "the failure the head avoids"
    assert exact.dtype == torch.float32 and exact.argmax(1).item() == 1
    torch.testing.assert_close(exact, torch.tensor([[100.0, 100.2]]))
    for name in MODELS:
        model = build_model(name, num_classes=5, in_channels=3)
        assert isinstance(model.fc, FloatLinear)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            assert model(torch.randn(2, 3, 32, 32)).dtype == torch.float32
