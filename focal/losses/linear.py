r"""Focal loss of a linear layer's logits, computed in chunks of rows so that the (N, C) logits never exist.

.. math::

    \mathrm{FL}_i = -\alpha_{t_i} \, w_{t_i} \, (1 - p_{i,t_i})^{\gamma} \log p_{i,t_i},
    \qquad p_i = \mathrm{softmax}(W x_i + b)

For a classifier over 32k–256k classes (a language model's vocabulary, a retrieval head),
``focal_loss(hidden @ W.T, target)`` materialises the N×C logits, their log-softmax and, in backward, their
gradient: several GiB (N = 8192 rows and C = 131072 classes make 4 GiB per float32 copy).
:func:`linear_focal_loss`, named and shaped like :func:`torch.nn.functional.linear_cross_entropy`, takes the hidden
states and the classifier's weight instead and walks the batch a chunk of rows at a time; a chunk's logits, softmax
and gradient share one chunk×C buffer. The extra memory is that buffer and gradients the size of the parameters.

The work is that of the materialised path, three matrix products (the logits, the gradients of input and weight)
with fewer elementwise passes, so the trade-off costs no time unless chunks are thin (see ``CHUNK_ELEMENTS``).
A scalar loss (``"mean"``, ``"sum"``) has a scalar upstream gradient, so forward forms the gradients of the tensors
that require one (none under ``torch.no_grad()``) while the chunk's softmax is at hand, and backward scales them;
``"none"`` saves two numbers per row and recomputes each chunk's logits in backward.
``F.linear_cross_entropy(..., reduction="none")`` plus the focal term would recompute them for every reduction: it
measured 1.75× the time of ``focal_loss`` on materialised logits at N = 8192, H = 256, C = 32768 (float32, 2 CPU
cores), where this function (chunks of 1024 rows) measured 0.66-0.81× its time and 0.04× its extra memory (0.06×
once ``focal_loss`` stopped keeping the logits for backward; README, Speed).

The backward pass is ``once_differentiable`` (no double backward). Soft targets and label smoothing weight every
class's term, so they need the full distribution: use :func:`focal.focal_loss` on materialised logits for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from focal.losses import kernels, softmax
from focal.losses.checks import (
    ClassVector,
    GammaLike,
    check_alpha,
    check_gamma,
    check_label_smoothing,
    check_reduction,
    check_targets_in_range,
    class_vector,
    compute_dtype,
    register_class_arguments,
)

__all__ = ["linear_focal_loss", "LinearFocalLoss"]

# Default rows per chunk: a chunk×C buffer of the input's size (N·H elements) or of CHUNK_ELEMENTS (128 MiB in
# float32), whichever is larger, and at most half the batch, so the N×C logits never exist. Thinner chunks slow the
# matrix products: at H = 256, C = 32768 on 2 CPU cores, 64 rows took 2× and 128 rows 1.1× the time of the
# materialised path, 512 and 1024 rows 0.5-0.8×.
CHUNK_ELEMENTS = 1 << 25


def linear_focal_loss(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    *,
    linear_bias: Optional[Tensor] = None,
    gamma: GammaLike = 2.0,
    alpha: ClassVector = None,
    weight: ClassVector = None,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    chunk_size: Optional[int] = None,
) -> Tensor:
    r"""Softmax focal loss of ``input @ linear_weight.T + linear_bias``, chunked so no N×C tensor is formed.

    .. math::

        \mathrm{FL}_i = -\alpha_{t_i} \, w_{t_i} \, (1 - p_{i,t_i})^{\gamma} \log p_{i,t_i},
        \qquad p_i = \mathrm{softmax}(W x_i + b)

    Equal, in value and in the gradients of ``input``, ``linear_weight`` and ``linear_bias``, to
    ``focal_loss(F.linear(input, linear_weight, linear_bias), target, ...)`` with the same options.

    Args:
        input: hidden states of shape (N, H). Half and bfloat16 tensors (also mixed with float32 ones) are computed
            in float32 chunk by chunk; the loss comes back in ``input``'s dtype, each gradient in its tensor's.
        linear_weight: the classifier's weight, shape (C, H).
        target: class indices of shape (N,). Soft targets are rejected (they need every class's probability).
        linear_bias: None or the classifier's bias, shape (C,).
        gamma: focusing parameter γ ≥ 0 (default 2.0), a float tensor of C per-class values, or ``"flsd53"``,
            as in :func:`focal.focal_loss`.
        alpha: None or C per-class factors, as in :func:`focal.focal_loss`.
        weight: C per-class weights, with cross_entropy's weighted mean (:math:`\sum \ell / \sum w_{t}`).
        reduction: ``"none"`` (shape (N,)), ``"mean"`` (default) or ``"sum"``.
        ignore_index: target value whose rows contribute neither loss nor gradient.
        label_smoothing: must be 0 (the uniform part needs the full distribution); kept for the signature.
        chunk_size: rows per chunk (a positive int); None chooses a chunk×C buffer of the input's size or of
            ``CHUNK_ELEMENTS`` (2^25) elements, whichever is larger, but at most half the batch. Only speed and
            memory depend on it.

    Returns:
        The loss, differentiable once (``once_differentiable``). If every target is ignored, ``"mean"`` returns 0
        as :func:`focal.focal_loss` does.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from focal import focal_loss, linear_focal_loss
        >>> hidden = torch.tensor([[1.0, -0.5], [0.3, 2.0], [-1.0, 0.2]])
        >>> classifier = torch.tensor([[0.5, 1.0], [-1.0, 0.4], [2.0, -0.3], [0.1, 0.1]])
        >>> target = torch.tensor([2, 1, 0])
        >>> linear_focal_loss(hidden, classifier, target, gamma=2.0, chunk_size=2)
        tensor(0.9524)
        >>> torch.allclose(linear_focal_loss(hidden, classifier, target), focal_loss(F.linear(hidden, classifier), target))
        True
    """
    _check_tensors(input, linear_weight, linear_bias, target)
    check_reduction(reduction)
    _check_no_smoothing(label_smoothing)
    check_alpha(alpha)
    num_rows, hidden, num_classes = input.size(0), input.size(1), linear_weight.size(0)
    check_gamma(gamma, num_classes)
    rows = chunk_rows(chunk_size, num_rows, hidden, num_classes)
    dtype = _common_compute_dtype(input, linear_weight, linear_bias)
    plan = _plan(target, gamma, alpha, weight, reduction, ignore_index, num_classes, input, dtype)
    grad_on = torch.is_grad_enabled()
    needs = tuple(grad_on and t is not None and t.requires_grad for t in (input, linear_weight, linear_bias))
    loss = _LinearFocal.apply(input, linear_weight, linear_bias, plan, rows, needs)
    return loss.to(input.dtype)


def chunk_rows(chunk_size: Optional[int], num_rows: int, hidden: int, num_classes: int) -> int:
    """Rows per chunk: ``chunk_size`` if given (validated), else a chunk×C buffer of the input's size (N·H) or of
    ``CHUNK_ELEMENTS``, whichever is larger, and at most half the batch (rounded up).

    >>> chunk_rows(None, 8192, 256, 32768), chunk_rows(None, 2048, 256, 131072), chunk_rows(None, 65536, 256, 1000)
    (1024, 256, 32768)
    >>> chunk_rows(100, 10, 4, 5)
    10
    """
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be None or a positive int (rows per chunk), got {chunk_size!r}")
        return min(chunk_size, max(num_rows, 1))
    rows = max(num_rows * hidden, CHUNK_ELEMENTS) // max(num_classes, 1)
    return max(1, min(-(-num_rows // 2), rows))


def _check_no_smoothing(label_smoothing: float) -> None:
    check_label_smoothing(label_smoothing)
    if label_smoothing > 0:
        raise ValueError(f"label_smoothing={label_smoothing} needs the full distribution over classes (its uniform part "
                         "weights every class's term), which the linear focal loss never forms; use focal_loss("
                         "F.linear(input, linear_weight, linear_bias), target, label_smoothing=...) on materialised logits")


def _check_tensors(input, linear_weight, linear_bias, target) -> None:
    named = {"input": input, "linear_weight": linear_weight, "linear_bias": linear_bias, "target": target}
    for name, value in named.items():
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(value).__name__}")
        if value is not None and name != "target" and not value.is_floating_point():
            raise TypeError(f"{name} must be floating point, got {value.dtype}")
    if input.dim() != 2:
        raise ValueError(f"input must be hidden states of shape (N, H), got shape {tuple(input.shape)}")
    if linear_weight.dim() != 2 or linear_weight.size(1) != input.size(1):
        raise ValueError(f"linear_weight must have shape (C, H) with H = {input.size(1)} (input's last dimension), "
                         f"got shape {tuple(linear_weight.shape)}")
    if linear_bias is not None and linear_bias.shape != linear_weight.shape[:1]:
        raise ValueError(f"linear_bias must have shape (C,) = ({linear_weight.size(0)},), got {tuple(linear_bias.shape)}")
    if target.is_floating_point():
        raise TypeError("target must hold class indices: soft (probability) targets weight every class's term, so "
                        "they need the full distribution over classes, which linear_focal_loss never forms; use "
                        "focal_loss(F.linear(input, linear_weight, linear_bias), target) on materialised logits")
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"target must hold integer class indices, got {target.dtype}")
    if target.shape != input.shape[:1]:
        raise ValueError(f"target must have shape (N,) = ({input.size(0)},) for input of shape {tuple(input.shape)}, "
                         f"got {tuple(target.shape)}")
    devices = {t.device for t in named.values() if t is not None}
    if len(devices) > 1:
        raise ValueError(f"input, linear_weight, linear_bias and target must be on one device, got {sorted(map(str, devices))}")


def _common_compute_dtype(*tensors: Optional[Tensor]) -> torch.dtype:
    """float64 if any tensor is float64, else float32 (half and bfloat16 are computed in float32)."""
    return torch.float64 if any(t is not None and compute_dtype(t) == torch.float64 for t in tensors) else torch.float32


@dataclass
class _Plan:
    """What the chunks need to know of the targets, all O(N): no tensor here has a class dimension but γ's."""

    reduction: str
    target: Tensor  # (N,) class indices, ignored rows replaced by 0
    factor: Tensor  # (N,) α_t·w_t, 0 on ignored rows, divided by the mean's denominator for "mean"
    gamma: GammaLike
    gamma_rows: Optional[Tensor]  # (N,) γ_t for a per-class γ, else None


def _plan(target, gamma, alpha, weight, reduction, ignore_index, num_classes, like, dtype) -> _Plan:
    target = target.long()
    ignored = target == ignore_index
    safe = target.masked_fill(ignored, 0)
    check_targets_in_range(safe, num_classes, ignore_index)
    alpha_v = class_vector(alpha, "alpha", num_classes, like)
    weight_v = class_vector(weight, "weight", num_classes, like)
    factor = torch.ones(safe.shape, dtype=dtype, device=safe.device)
    for vector in (alpha_v, weight_v):
        if vector is not None:
            factor = factor * vector.detach().to(dtype)[safe]  # constants: no gradient for α or w
    factor = factor.masked_fill(ignored, 0.0)
    if reduction == "mean":  # known before any logit: the count of kept rows, or their Σ w_t (1 if that is 0)
        kept = (~ignored).sum().to(dtype) if weight_v is None else weight_v.to(dtype)[safe].masked_fill(ignored, 0).sum()
        factor = factor / torch.where(kept > 0, kept, 1.0)
    gamma_rows = gamma.detach().to(safe.device, dtype)[safe] if isinstance(gamma, Tensor) else None
    return _Plan(reduction, safe, factor, gamma, gamma_rows)


def _logits_into(buf: Tensor, x: Tensor, w: Tensor, b: Optional[Tensor]) -> Tensor:
    """x @ w.T + b written into the first rows of the reused chunk buffer."""
    out = buf[: x.size(0)]
    return torch.mm(x, w.t(), out=out) if b is None else torch.addmm(b, x, w.t(), out=out)


def _logits_to_grad(z: Tensor, g: Tensor, scale: Optional[Tensor], t: Tensor) -> Tensor:
    """Turn the chunk's softmax (``z``·``scale`` row-wise) into the logits' gradient g·(onehot_t - softmax), in place."""
    z.mul_((g if scale is None else g * scale).neg().unsqueeze(1))
    return z.scatter_add_(1, t.unsqueeze(1), g.unsqueeze(1))


def _new_grads(input: Tensor, w: Tensor, needs) -> tuple:
    """Gradient accumulators in the compute dtype for the tensors that need one: input, weight, bias."""
    need_x, need_w, need_b = needs
    return (input.new_empty(input.shape, dtype=w.dtype) if need_x else None,  # every row is written once
            torch.zeros_like(w) if need_w else None, w.new_zeros(w.size(0)) if need_b else None)


def _accumulate(grads: tuple, z: Tensor, x: Tensor, w: Tensor, start: int) -> None:
    """Add a chunk's share (``z``, the gradient of its logits) to the gradients of input, weight and bias."""
    grad_x, grad_w, grad_b = grads
    if grad_x is not None:
        torch.mm(z, w, out=grad_x[start : start + z.size(0)])
    if grad_w is not None:
        grad_w.addmm_(z.t(), x)
    if grad_b is not None:
        grad_b.add_(z.sum(0))


def _chunk_focal(plan: _Plan, buf: Tensor, x: Tensor, w: Tensor, b: Optional[Tensor], start: int, end: int):
    """One chunk: exp(logits - max) left in ``buf``, and per row Σ exp, the log-normaliser, the weighted loss and its
    derivative g = ∂(loss)/∂log p_t."""
    t = plan.target[start:end]
    z = _logits_into(buf, x, w, b)
    shift = z.amax(1)
    z_t = z.gather(1, t.unsqueeze(1)).squeeze(1) - shift
    sum_exp = z.sub_(shift.unsqueeze(1)).exp_().sum(1)
    log_sum = sum_exp.log()
    logp_t = z_t - log_sum
    gamma_rows = None if plan.gamma_rows is None else plan.gamma_rows[start:end]
    loss, slope = kernels.focal_term_kernel(logp_t, softmax.gamma_for(plan.gamma, logp_t, gamma_rows))
    factor = plan.factor[start:end]
    return z, sum_exp, log_sum + shift, loss * factor, factor.neg() if slope is None else slope * factor


def _chunks(num_rows: int, rows: int):
    return ((start, min(start + rows, num_rows)) for start in range(0, num_rows, rows))


def _cast(t: Optional[Tensor], dtype: torch.dtype) -> Optional[Tensor]:
    return None if t is None else t.to(dtype)


class _LinearFocal(torch.autograd.Function):
    """The chunk loop. "mean" and "sum" form the gradients in forward (their upstream gradient is one scalar) and
    backward scales them; "none" saves the log-normaliser and ∂loss/∂log p_t of each row and recomputes in backward."""

    @staticmethod
    def forward(ctx, input, linear_weight, linear_bias, plan: _Plan, rows: int, needs):
        dtype = plan.factor.dtype
        w, b = _cast(linear_weight, dtype), _cast(linear_bias, dtype)
        ctx.dtypes = tuple(None if t is None else t.dtype for t in (input, linear_weight, linear_bias))
        ctx.plan, ctx.rows, ctx.needs = plan, rows, needs
        per_row = plan.reduction == "none"
        grads = _new_grads(input, w, (False,) * 3 if per_row else needs)
        buf = input.new_empty((rows, w.size(0)), dtype=dtype)
        out = input.new_zeros(input.shape[:1] if per_row else (), dtype=dtype)
        slopes, log_norms = (torch.empty_like(out), torch.empty_like(out)) if per_row else (None, None)
        for start, end in _chunks(input.size(0), rows):
            x = input[start:end].to(dtype)
            z, sum_exp, log_norm, loss, g = _chunk_focal(plan, buf, x, w, b, start, end)
            if per_row:
                out[start:end], slopes[start:end], log_norms[start:end] = loss, g, log_norm
                continue
            out += loss.sum()
            if any(needs):
                _accumulate(grads, _logits_to_grad(z, g, sum_exp.reciprocal(), plan.target[start:end]), x, w, start)
        if per_row:
            ctx.save_for_backward(input, linear_weight, linear_bias, slopes, log_norms)
        else:
            ctx.save_for_backward(*grads)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        if ctx.plan.reduction == "none":
            grads = _backward_per_row(ctx, grad_output)
        else:
            grads = tuple(None if g is None else g * grad_output for g in ctx.saved_tensors)
        return tuple(None if g is None else g.to(d) for g, d in zip(grads, ctx.dtypes)) + (None, None, None)


def _backward_per_row(ctx, grad_output: Tensor) -> tuple:
    """Backward of reduction="none": recompute each chunk's softmax from the saved log-normaliser."""
    input, linear_weight, linear_bias, slopes, log_norms = ctx.saved_tensors
    w, b = _cast(linear_weight, slopes.dtype), _cast(linear_bias, slopes.dtype)
    grads = _new_grads(input, w, ctx.needs)
    buf = input.new_empty((ctx.rows, w.size(0)), dtype=w.dtype)
    g_rows = slopes * grad_output.to(w.dtype)
    for start, end in _chunks(input.size(0), ctx.rows):
        x = input[start:end].to(w.dtype)
        z = _logits_into(buf, x, w, b).sub_(log_norms[start:end].unsqueeze(1)).exp_()
        _accumulate(grads, _logits_to_grad(z, g_rows[start:end], None, ctx.plan.target[start:end]), x, w, start)
    return grads


class LinearFocalLoss(nn.Module):
    r"""A classifier and its focal loss in one: ``nn.Linear(in_features, num_classes)`` plus :func:`linear_focal_loss`.

    .. math::

        \mathrm{FL}_i = -\alpha_{t_i} \, w_{t_i} \, (1 - p_{i,t_i})^{\gamma} \log p_{i,t_i},
        \qquad p_i = \mathrm{softmax}(W x_i + b)

    Mirrors :class:`torch.nn.LinearCrossEntropyLoss`: the Module owns ``self.linear`` and ``forward(input, target)``
    computes the loss of its logits without forming them. ``alpha``, ``weight`` and a per-class ``gamma`` are
    buffers, so ``.to(device)`` moves them and they appear in ``state_dict``.

    Example:
        >>> import torch
        >>> from focal import LinearFocalLoss
        >>> _ = torch.manual_seed(0)
        >>> criterion = LinearFocalLoss(8, 5, bias=True, gamma=1.0, alpha=[1.0, 2.0, 1.0, 1.0, 0.5])
        >>> criterion
        LinearFocalLoss(
          gamma=1.0, alpha=[1.0, 2.0, 1.0, 1.0, 0.5], reduction='mean'
          (linear): Linear(in_features=8, out_features=5, bias=True)
        )
        >>> loss = criterion(torch.randn(4, 8), torch.tensor([0, 1, 4, 2]))
        >>> loss.backward()
        >>> criterion.linear.weight.grad.shape
        torch.Size([5, 8])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        bias: bool = False,
        device=None,
        dtype=None,
        gamma: GammaLike = 2.0,
        alpha: ClassVector = None,
        weight: ClassVector = None,
        reduction: str = "mean",
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        chunk_size: Optional[int] = None,
    ) -> None:
        super().__init__()
        check_reduction(reduction)
        _check_no_smoothing(label_smoothing)
        chunk_rows(chunk_size, 1, in_features, num_classes)  # validates chunk_size
        register_class_arguments(self, gamma, alpha, weight, num_classes)
        self.linear = nn.Linear(in_features, num_classes, bias=bias, device=device, dtype=dtype)
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.label_smoothing = float(label_smoothing)
        self.chunk_size = chunk_size

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return linear_focal_loss(input, self.linear.weight, target, linear_bias=self.linear.bias, gamma=self.gamma,
                                 alpha=self.alpha, weight=self.weight, reduction=self.reduction,
                                 ignore_index=self.ignore_index, chunk_size=self.chunk_size)

    def extra_repr(self) -> str:
        text = softmax.FocalLoss.extra_repr(self)  # the same attributes, printed the same way
        return text if self.chunk_size is None else f"{text}, chunk_size={self.chunk_size}"
