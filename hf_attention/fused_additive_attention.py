"""Bahdanau's additive scores e_ij = sum_d v_d tanh(q_id + k_jd) as fused compiled kernels, the default path of every
additive attention wherever they compile (`attention.additive_scores` dispatches to them).

The intermediate tanh(q_i + k_j) has `batch * heads * tgt_len * src_len * head_dim` elements. `fused_additive_scores`
(`FusedAdditiveScores`) never stores it: `torch.compile`d kernels each reduce over the
[batch, heads, tgt_len, src_len, head_dim] space of t = tanh(q_i + k_j), computed in registers. Forward gives the
scores; backward recomputes t instead of keeping it, in one kernel per reduction axis.

Compiled kernels are kept on disk by inductor's own cache (`TORCHINDUCTOR_CACHE_DIR`, by default under the system's
temporary folder), so a process after the first one on a machine loads them instead of compiling.
"""

import functools

import torch
from transformers.utils import logging

logger = logging.get_logger(__name__)

# Below this many elements of the 5-D intermediate the eager path is faster: the kernels' fixed cost per call outweighs
# the work saved (the crossover is measured in docs/benchmark.md).
FUSED_MIN_ELEMENTS = 2**16

# tanh(x) ~ x P(x^2) / Q(x^2) with P(0) = Q(0) = 1 on [-clamp, clamp] (beyond, tanh is 1 to the fit's precision),
# fitted by weighted least squares in float64, one fit per input precision (the kernels compute in float32 either
# way). Inductor turns each into a few vector FMAs and one division, cheaper inside the kernels than torch.tanh; the
# fit for half-precision inputs has half the terms, and its error is far below the inputs' own rounding.
TANH_FITS = {
    # float32 and float64 inputs: error below 1e-6 against float64 tanh (tests check it)
    "float32": (
        9.0,
        (1.338030325e-01, 3.494741219e-03, 2.059579525e-05, 1.333764332e-08),
        (4.671362067e-01, 2.587372712e-02, 3.284276252e-04, 7.769291825e-07),
    ),
    # bfloat16 and float16 inputs (autocast): error below 1e-4, a fifth of float16's rounding, 1/40 of bfloat16's
    "half": (5.0, (1.024923701e-01, 6.718535048e-04), (4.355597664e-01, 1.283657940e-02)),
}


def tanh_fit_for(*dtypes: torch.dtype) -> str:
    """The `TANH_FITS` entry for inputs of these dtypes: "float32" if any of them is float32 or wider, else "half"."""
    return "float32" if any(dtype in (torch.float32, torch.float64) for dtype in dtypes) else "half"


def rational_tanh(x: torch.Tensor, fit: str = "float32") -> torch.Tensor:
    """tanh(x) as a rational function (`TANH_FITS[fit]`), odd and exactly 0 at 0.

    Args:
        x: any shape.
        fit: "float32" (float32 precision) or "half" (for bfloat16 / float16 inputs).

    Returns:
        tanh(x): the shape of `x`.
    """
    if fit not in TANH_FITS:
        raise ValueError(f"rational_tanh: fit {fit!r} is not one of {sorted(TANH_FITS)}")
    clamp, numerator_coefficients, denominator_coefficients = TANH_FITS[fit]
    x = x.clamp(-clamp, clamp)
    squared = x * x
    numerator, denominator = numerator_coefficients[-1], denominator_coefficients[-1]
    for p, q in zip(numerator_coefficients[-2::-1], denominator_coefficients[-2::-1], strict=True):
        numerator = numerator * squared + p
        denominator = denominator * squared + q
    return x * (numerator * squared + 1.0) / (denominator * squared + 1.0)


# The kernels below take, in float32 or float64: query [batch, heads, tgt, head_dim], keys [batch, heads, src,
# head_dim], score_vector [heads, head_dim], grad (of the scores) [batch, heads, tgt, src]; and the `TANH_FITS` key
# (a constant to the compiler: one set of kernels per fit).


def _features(query: torch.Tensor, keys: torch.Tensor, fit: str) -> torch.Tensor:
    """t_ijd = tanh(q_id + k_jd): [batch, heads, tgt, src, head_dim] (kept in registers once compiled)."""
    return rational_tanh(query.unsqueeze(-2) + keys.unsqueeze(-3), fit)


def _fused_scores(query: torch.Tensor, keys: torch.Tensor, score_vector: torch.Tensor, fit: str) -> torch.Tensor:
    """sum_d v_d t_ijd: [batch, heads, tgt, src]."""
    return (_features(query, keys, fit) * score_vector[None, :, None, None, :]).sum(-1)


def _fused_sums_over_source(
    query: torch.Tensor, keys: torch.Tensor, grad: torch.Tensor, fit: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """sum_j g_ij (1 - t_ijd^2) and sum_j g_ij t_ijd: each [batch, heads, tgt, head_dim]."""
    features = _features(query, keys, fit)
    grad = grad.unsqueeze(-1)
    return (grad * (1 - features * features)).sum(3), (grad * features).sum(3)


def _fused_sum_over_target(query: torch.Tensor, keys: torch.Tensor, grad: torch.Tensor, fit: str) -> torch.Tensor:
    """sum_i g_ij (1 - t_ijd^2): [batch, heads, src, head_dim]."""
    features = _features(query, keys, fit)
    return (grad.unsqueeze(-1) * (1 - features * features)).sum(2)


_compiled_kernels: dict = {}


def _compiled(kernel):
    """`kernel` through `torch.compile`, once per process, with dynamic shapes so that length-grouped batches of every
    size reuse it."""
    if kernel not in _compiled_kernels:
        # Inductor stores an expensive pointwise result read by two reductions; these thresholds make it recompute t.
        options = {"realize_opcount_threshold": 1000, "realize_reads_threshold": 1000}
        _compiled_kernels[kernel] = torch.compile(kernel, dynamic=True, options=options)
    return _compiled_kernels[kernel]


def _upcast(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Plain contiguous tensors of at least float32, so that every call matches the kernels compiled once (a
    `Parameter`, another dtype or other strides would each compile them again)."""
    # Cast outside the kernels: with bfloat16 inputs inductor stored the 5-D intermediate of the backward kernels.
    dtype = torch.promote_types(tensors[0].dtype, torch.float32)
    return tuple(_row_major(tensor.detach().to(dtype)) for tensor in tensors)


def _row_major(tensor: torch.Tensor) -> torch.Tensor:
    # `contiguous()` keeps any stride on a size-1 axis (a decoding step's one target position); the kernels' guards
    # compare every stride, so such a tensor is copied into exact row-major strides.
    if tensor.stride() == torch.empty(tensor.shape, device="meta").stride():
        return tensor
    return torch.empty(tensor.shape, dtype=tensor.dtype, device=tensor.device).copy_(tensor)


class FusedAdditiveScores(torch.autograd.Function):
    """Additive scores with a hand-written backward over compiled kernels: no 5-D tensor is ever stored.

    With t_ijd = tanh(q_id + k_jd) and upstream gradient g_ij:
        dq_id = v_d sum_j g_ij (1 - t_ijd^2),   dk_jd = v_d sum_i g_ij (1 - t_ijd^2),   dv_d = sum_ijb g_ij t_ijd.
    The kernels compute in float32 at least, with the tanh fit of the inputs' precision (`tanh_fit_for`); results and
    gradients come back in each input's dtype.
    """

    @staticmethod
    def forward(ctx, query: torch.Tensor, keys: torch.Tensor, score_vector: torch.Tensor) -> torch.Tensor:
        """query: [batch, heads, tgt_len, head_dim], keys: [batch, heads, src_len, head_dim], score_vector: [heads,
        head_dim]; returns the scores [batch, heads, tgt_len, src_len]."""
        ctx.save_for_backward(query, keys, score_vector)
        ctx.fit = tanh_fit_for(query.dtype, keys.dtype)
        query_, keys_, vector = _upcast(query, keys, score_vector)
        return _compiled(_fused_scores)(query_, keys_, vector, ctx.fit).to(query.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_scores: torch.Tensor):
        """grad_scores: [batch, heads, tgt_len, src_len]; returns the gradients of query, keys and score_vector."""
        query, keys, score_vector = ctx.saved_tensors
        query_, keys_, vector, grad = _upcast(query, keys, score_vector, grad_scores)
        derivative_sums, feature_sums = _compiled(_fused_sums_over_source)(query_, keys_, grad, ctx.fit)
        vector = vector[None, :, None, :]
        grad_query = (vector * derivative_sums).to(query.dtype)
        grad_keys = (vector * _compiled(_fused_sum_over_target)(query_, keys_, grad, ctx.fit)).to(keys.dtype)
        grad_vector = feature_sums.sum((0, 2)).to(score_vector.dtype)
        return grad_query, grad_keys, grad_vector


@functools.cache
def fused_kernels_available(device_type: str) -> bool:
    """Whether the fused kernels compile and run on `device_type` ("cpu", "cuda", ...), checked once per process.

    The check runs the forward and both backward kernels on tiny inputs. Where they fail (no C++ compiler for a CPU,
    no Triton for a GPU, dynamo unsupported), it logs one warning and returns False, and the callers take the eager
    path, which gives the same values.
    """
    try:
        with torch.no_grad():
            # Distinct sizes, or dynamo would assume that equal ones stay equal and compile again for real shapes.
            query, keys = torch.zeros(2, 3, 4, 5, device=device_type), torch.zeros(2, 3, 6, 5, device=device_type)
            score_vector, grad = torch.zeros(3, 5, device=device_type), torch.zeros(2, 3, 4, 6, device=device_type)
            _compiled(_fused_scores)(query, keys, score_vector, "float32")
            _compiled(_fused_scores)(
                torch.zeros(2, 3, 1, 5, device=device_type), keys, score_vector, "float32"
            )  # a decoding step
            _compiled(_fused_sums_over_source)(query, keys, grad, "float32")
            _compiled(_fused_sum_over_target)(query, keys, grad, "float32")
    except Exception as error:  # a missing compiler surfaces as many different exception types
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        logger.warning(
            f"The fused additive attention kernels do not compile on {device_type} "
            f"({type(error).__name__}: {reason}); Bahdanau attention runs eagerly (same values, slower, more memory)."
        )
        return False
    return True


def fused_additive_scores(query: torch.Tensor, keys: torch.Tensor, score_vector: torch.Tensor) -> torch.Tensor:
    """Additive scores through `FusedAdditiveScores` (the first call compiles; CPUs need a C++ compiler).

    Args:
        query: [batch, heads, tgt_len, head_dim].
        keys: [batch, heads, src_len, head_dim].
        score_vector: [heads, head_dim].

    Returns:
        scores: [batch, heads, tgt_len, src_len], in `query`'s dtype.
    """
    return FusedAdditiveScores.apply(query, keys, score_vector)


__all__ = [
    "FUSED_MIN_ELEMENTS",
    "TANH_FITS",
    "FusedAdditiveScores",
    "fused_additive_scores",
    "fused_kernels_available",
    "rational_tanh",
    "tanh_fit_for",
]
