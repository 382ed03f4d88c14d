"""hf_attention.fused_additive_attention: the fused compiled additive kernels against the eager computation."""

import torch

from hf_attention import additive_scores
from hf_attention.fused_additive_attention import (
    FusedAdditiveScores,
    rational_tanh,
)

HEADS, HEAD_DIM = 4, 4


def additive_inputs(dtype=torch.float32, seed=4):
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(2, HEADS, 9, HEAD_DIM, generator=generator, dtype=dtype).requires_grad_()
    keys = torch.randn(2, HEADS, 7, HEAD_DIM, generator=generator, dtype=dtype).requires_grad_()
    score_vector = torch.randn(HEADS, HEAD_DIM, generator=generator, dtype=dtype).requires_grad_()
    return query, keys, score_vector


def test_compiled_additive_kernel_gives_the_eager_scores_and_gradients():
    """The opt-in fused path (config.compile_additive_attention): same values, same gradients."""
    query, keys, score_vector = additive_inputs()
    eager = additive_scores(query, keys, score_vector)
    compiled = additive_scores(query, keys, score_vector, compiled=True)
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    upstream = torch.randn_like(eager)
    expected = torch.autograd.grad(eager, (query, keys, score_vector), upstream)
    actual = torch.autograd.grad(compiled, (query, keys, score_vector), upstream)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)


def test_fused_additive_backward_passes_gradcheck():
    """The hand-written backward against finite differences, in float64."""
    query, keys, score_vector = additive_inputs(torch.float64)
    assert torch.autograd.gradcheck(FusedAdditiveScores.apply, (query, keys, score_vector))


def test_fused_additive_tanh_is_tanh_to_float32_precision():
    x = torch.linspace(-30.0, 30.0, 600_001)
    error = (rational_tanh(x).double() - torch.tanh(x.double())).abs().max().item()
    assert error < 1e-6
    assert rational_tanh(torch.zeros(1)).item() == 0.0
    torch.testing.assert_close(rational_tanh(-x), -rational_tanh(x), atol=0, rtol=0)


def test_fused_additive_path_never_stores_the_five_dimensional_intermediate():
    """Autograd keeps only the inputs; the eager path (one chunk) keeps the [batch, heads, tgt, src, head_dim] tanh."""
    query, keys, score_vector = additive_inputs()
    intermediate = query.shape[0] * HEADS * query.shape[2] * keys.shape[2] * HEAD_DIM

    def largest_saved(compiled: bool) -> int:
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            additive_scores(query, keys, score_vector, compiled=compiled)
        return max(sizes)

    assert largest_saved(compiled=False) >= intermediate
    assert largest_saved(compiled=True) < intermediate // 5


def test_fused_additive_scores_under_bf16_autocast_keep_input_dtypes():
    """Under autocast the projections are bfloat16: scores and gradients come back in each input's dtype, and close
    to the float32 computation (the kernels accumulate in float32)."""
    query, keys, score_vector = additive_inputs()
    upstream = torch.randn(2, HEADS, 9, 7)
    reference = additive_scores(query, keys, score_vector)
    reference_grads = torch.autograd.grad(reference, (query, keys, score_vector), upstream)
    low = [query.detach().bfloat16().requires_grad_(), keys.detach().bfloat16().requires_grad_(), score_vector]
    scores = additive_scores(*low, compiled=True)
    grads = torch.autograd.grad(scores, low, upstream.bfloat16())
    assert scores.dtype == torch.bfloat16
    assert [g.dtype for g in grads] == [torch.bfloat16, torch.bfloat16, torch.float32]
    torch.testing.assert_close(scores.float(), reference, atol=0.1, rtol=0.02)
    for grad, expected in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(grad.float(), expected, atol=0.5, rtol=0.05)
