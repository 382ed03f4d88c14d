"""hf_attention.fused_additive_attention: the fused compiled additive kernels against the eager computation."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers.testing_utils import CaptureLogger

import hf_attention.attention as attention_module
import hf_attention.fused_additive_attention as fused_module
from hf_attention import additive_scores
from hf_attention.fused_additive_attention import (
    FUSED_MIN_ELEMENTS,
    FusedAdditiveScores,
    fused_kernels_available,
    rational_tanh,
    tanh_fit_for,
)

HEADS, HEAD_DIM = 4, 4


def additive_inputs(dtype=torch.float32, seed=4):
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(2, HEADS, 9, HEAD_DIM, generator=generator, dtype=dtype).requires_grad_()
    keys = torch.randn(2, HEADS, 7, HEAD_DIM, generator=generator, dtype=dtype).requires_grad_()
    score_vector = torch.randn(HEADS, HEAD_DIM, generator=generator, dtype=dtype).requires_grad_()
    return query, keys, score_vector


def test_compiled_additive_kernel_gives_the_eager_scores_and_gradients():
    """The fused path (compile_additive_attention=True) against the eager one: same values, same gradients."""
    query, keys, score_vector = additive_inputs()
    eager = additive_scores(query, keys, score_vector, compiled=False)
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


@pytest.mark.parametrize(("fit", "bound"), [("float32", 1e-6), ("half", 1e-4)])
def test_fused_additive_tanh_fits_are_tanh_within_their_bound(fit, bound):
    x = torch.linspace(-30.0, 30.0, 600_001)
    error = (rational_tanh(x, fit).double() - torch.tanh(x.double())).abs().max().item()
    assert error < bound
    assert rational_tanh(torch.zeros(1), fit).item() == 0.0
    torch.testing.assert_close(rational_tanh(-x, fit), -rational_tanh(x, fit), atol=0, rtol=0)


def test_an_unknown_tanh_fit_is_refused_by_name():
    with pytest.raises(ValueError, match=r"fit 'float8' is not one of \['float32', 'half'\]"):
        rational_tanh(torch.zeros(3), "float8")


def test_the_tanh_fit_follows_the_widest_input_dtype():
    assert tanh_fit_for(torch.bfloat16, torch.bfloat16) == "half"
    assert tanh_fit_for(torch.float16, torch.bfloat16) == "half"
    assert tanh_fit_for(torch.bfloat16, torch.float32) == "float32"
    assert tanh_fit_for(torch.float64, torch.float64) == "float32"


@pytest.mark.parametrize(("dtype", "fit"), [(torch.bfloat16, "half"), (torch.float32, "float32")])
def test_each_precision_runs_its_own_fit_and_stays_within_its_bound(monkeypatch, dtype, fit):
    """bfloat16 inputs run the kernels with the half fit, float32 ones with the float32 fit; scores and gradients
    stay within the fit's bound of the exact computation on the same inputs (float64, torch.tanh)."""
    used, compiled = [], fused_module._compiled
    monkeypatch.setattr(
        fused_module, "_compiled", lambda kernel: lambda *args: used.append(args[-1]) or compiled(kernel)(*args)
    )
    query, keys, score_vector = additive_inputs()
    inputs = [query.detach().to(dtype).requires_grad_(), keys.detach().to(dtype).requires_grad_(), score_vector]
    upstream = torch.randn(2, HEADS, 9, 7, generator=torch.Generator().manual_seed(1))
    scores = FusedAdditiveScores.apply(*inputs)
    grads = torch.autograd.grad(scores, inputs, upstream.to(dtype))
    assert used == [fit] * 3
    exact_inputs = [tensor.detach().double().requires_grad_() for tensor in inputs]
    exact = additive_scores(*exact_inputs, compiled=False)
    exact_grads = torch.autograd.grad(exact, exact_inputs, upstream.double())
    bound = (1e-6 if fit == "float32" else 1e-4) * score_vector.abs().sum(-1).max().item()
    resolution = torch.finfo(dtype).eps  # the results' own rounding
    torch.testing.assert_close(scores.double(), exact, atol=bound, rtol=resolution)
    for grad, expected in zip(grads, exact_grads, strict=True):
        # each gradient sums up to 9 upstream values times a tanh within the bound, then rounds to its dtype
        torch.testing.assert_close(grad.double(), expected, atol=9 * 3 * bound, rtol=resolution)


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


@pytest.fixture
def fresh_availability_check():
    """`fused_kernels_available` is cached per process: forget its answer before and after the test."""
    fused_kernels_available.cache_clear()
    yield
    fused_kernels_available.cache_clear()


@pytest.mark.parametrize(("tgt_len", "src_len", "expect_fused"), [(1, 8, False), (16, 16, True)])
def test_the_default_fuses_large_scores_and_runs_tiny_ones_eagerly(monkeypatch, tgt_len, src_len, expect_fused):
    """compiled=None (the config's default): the fused kernels from FUSED_MIN_ELEMENTS elements on, eager below."""
    generator = torch.Generator().manual_seed(0)
    head_dim = 64
    query = torch.randn(8, HEADS, tgt_len, head_dim, generator=generator)
    keys = torch.randn(8, HEADS, src_len, head_dim, generator=generator)
    score_vector = torch.randn(HEADS, head_dim, generator=generator)
    assert (8 * HEADS * tgt_len * src_len * head_dim >= FUSED_MIN_ELEMENTS) == expect_fused
    calls = []

    def spy(*args):
        calls.append(args)
        return fused_module.fused_additive_scores(*args)

    monkeypatch.setattr(attention_module, "fused_additive_scores", spy)
    scores = additive_scores(query, keys, score_vector)
    assert len(calls) == int(expect_fused)
    torch.testing.assert_close(scores, additive_scores(query, keys, score_vector, compiled=False), atol=1e-5, rtol=0)


def test_kernels_that_do_not_compile_fall_back_to_eager_with_one_warning(monkeypatch, fresh_availability_check):
    def no_compiler(kernel):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(fused_module, "_compiled", no_compiler)
    query, keys, score_vector = additive_inputs()
    with CaptureLogger(fused_module.logger) as captured:
        first = additive_scores(query, keys, score_vector, compiled=True)
        second = additive_scores(query, keys, score_vector, compiled=True)
    torch.testing.assert_close(first, additive_scores(query, keys, score_vector, compiled=False), atol=0, rtol=0)
    torch.testing.assert_close(second, first, atol=0, rtol=0)
    assert captured.out.count("do not compile on cpu") == 1, captured.out
    assert "No working C++ compiler found" in captured.out
    first.sum().backward()  # the eager path's own autograd
    assert query.grad is not None


def test_a_machine_without_a_cxx_compiler_gets_eager_scores_and_one_warning(tmp_path):
    """A real process whose C++ compiler does not exist, with an empty kernel cache: same scores, one warning."""
    script = textwrap.dedent("""
        import torch
        from hf_attention import additive_scores
        g = torch.Generator().manual_seed(0)
        q, k, v = torch.randn(4, 2, 16, 32, generator=g), torch.randn(4, 2, 16, 32, generator=g), torch.randn(2, 32)
        default, eager = additive_scores(q, k, v), additive_scores(q, k, v, compiled=False)
        print("max difference", (default - eager).abs().max().item())
    """)
    env = {**os.environ, "CXX": str(tmp_path / "no-such-c++"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "max difference 0.0" in result.stdout
    assert result.stderr.count("The fused additive attention kernels do not compile on cpu") == 1, result.stderr


def test_kernels_compile_once_for_parameters_strided_views_and_decoding_steps():
    """After the one check per process, a `Parameter` score vector, head-split views of projections (with gradients)
    and a decoding step's single target position (without) all reuse the kernels compiled for it: none compiles
    again."""
    from torch._dynamo.utils import counters

    assert fused_kernels_available("cpu")
    compiled_before = counters["stats"]["unique_graphs"]
    generator = torch.Generator().manual_seed(3)
    score_vector = torch.nn.Parameter(torch.randn(HEADS, HEAD_DIM, generator=generator))
    for tgt_len in (1, 6):
        training = tgt_len > 1
        projected_query = torch.randn(3, tgt_len, HEADS * HEAD_DIM, generator=generator, requires_grad=training)
        projected_keys = torch.randn(3, 5, HEADS * HEAD_DIM, generator=generator, requires_grad=training)
        query = projected_query.view(3, tgt_len, HEADS, HEAD_DIM).transpose(1, 2)
        keys = projected_keys.view(3, 5, HEADS, HEAD_DIM).transpose(1, 2)
        scores = additive_scores(query, keys, score_vector, compiled=True)
        eager = additive_scores(query, keys, score_vector, compiled=False)
        torch.testing.assert_close(scores, eager, atol=1e-5, rtol=0)
        if training:
            scores.sum().backward()
    assert counters["stats"]["unique_graphs"] == compiled_before
