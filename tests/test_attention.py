"""The alignment functions against reference computations written out formula by formula."""

import math

import pytest
import torch

from hf_attention import MultiHeadCrossAttention, Seq2SeqAttentionConfig, additive_scores
from hf_attention import attention as attention_module
from hf_attention.attention import FusedAdditiveScores

BATCH, TGT, SRC, HIDDEN, HEADS = 3, 5, 6, 16, 4
HEAD_DIM = HIDDEN // HEADS


def make_attention(attention_type: str, implementation: str = "eager", **kwargs) -> MultiHeadCrossAttention:
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(
        vocab_size=10, hidden_size=HIDDEN, num_attention_heads=HEADS, attention_type=attention_type, **kwargs
    )
    config._attn_implementation = implementation
    attention = MultiHeadCrossAttention(config).eval()
    with torch.no_grad():
        for parameter in attention.parameters():
            parameter.normal_(0, 0.5)
    return attention


def inputs(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    query_states = torch.randn(BATCH, TGT, HIDDEN, generator=generator)
    encoder_states = torch.randn(BATCH, SRC, HIDDEN, generator=generator)
    mask = torch.ones(BATCH, SRC, dtype=torch.bool)
    mask[1, 4:] = False  # right padding
    mask[2, :2] = False  # left padding
    return query_states, encoder_states, mask


def reference(attention: MultiHeadCrossAttention, query_states, encoder_states, mask):
    """e_ij written per head as in the papers, then softmax over real source positions and sum_j a_ij v_j."""
    q = attention.q_proj(query_states).view(BATCH, TGT, HEADS, HEAD_DIM)
    k = attention.k_proj(encoder_states).view(BATCH, SRC, HEADS, HEAD_DIM)
    v = attention.v_proj(encoder_states).view(BATCH, SRC, HEADS, HEAD_DIM)
    scores = torch.empty(BATCH, HEADS, TGT, SRC)
    for b in range(BATCH):
        for h in range(HEADS):
            for i in range(TGT):
                for j in range(SRC):
                    qi, kj = q[b, i, h], k[b, j, h]
                    if attention.attention_type == "bahdanau":
                        scores[b, h, i, j] = attention.score_vector[h] @ torch.tanh(qi + kj)
                    elif attention.attention_type == "scaled_dot":
                        scores[b, h, i, j] = qi @ kj / math.sqrt(HEAD_DIM)
                    elif attention.attention_type == "dot":
                        scores[b, h, i, j] = qi @ kj
                    else:  # general: q^T W k
                        scores[b, h, i, j] = qi @ attention.bilinear[h] @ kj
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    context = torch.einsum("bhij,bjhd->bihd", weights, v).reshape(BATCH, TGT, HIDDEN)
    return attention.o_proj(context), weights


@pytest.mark.parametrize("attention_type", ["bahdanau", "scaled_dot", "dot", "general"])
def test_matches_reference_formula(attention_type):
    attention = make_attention(attention_type)
    query_states, encoder_states, mask = inputs()
    with torch.no_grad():
        keys, values = attention.project_memory(encoder_states)
        context, weights = attention(query_states, keys, values, mask, output_attentions=True)
        expected_context, expected_weights = reference(attention, query_states, encoder_states, mask)
    torch.testing.assert_close(weights, expected_weights, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(context, expected_context, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("attention_type", ["bahdanau", "scaled_dot", "dot", "general"])
def test_padding_gets_zero_weight_rows_sum_to_one_and_empty_source_gives_zeros(attention_type):
    attention = make_attention(attention_type)
    query_states, encoder_states, mask = inputs()
    mask[0] = False  # a source that is all padding
    keys, values = attention.project_memory(encoder_states)
    context, weights = attention(query_states, keys, values, mask, output_attentions=True)
    assert not torch.isnan(context).any() and not torch.isnan(weights).any()
    assert torch.equal(weights[1, :, :, 4:], torch.zeros_like(weights[1, :, :, 4:]))
    assert torch.equal(weights[2, :, :, :2], torch.zeros_like(weights[2, :, :, :2]))
    torch.testing.assert_close(weights[1:].sum(-1), torch.ones(BATCH - 1, HEADS, TGT))
    assert torch.equal(weights[0], torch.zeros_like(weights[0]))
    # No attention means no context: the output projection of a zero vector (no bias) is zero.
    assert torch.equal(context[0], torch.zeros_like(context[0]))
    context.sum().backward()
    assert all(not torch.isnan(p.grad).any() for p in attention.parameters() if p.grad is not None)


@pytest.mark.parametrize("attention_type", ["scaled_dot", "dot", "general"])
def test_sdpa_path_equals_eager_path(attention_type):
    eager = make_attention(attention_type, "eager")
    sdpa = make_attention(attention_type, "sdpa")
    query_states, encoder_states, mask = inputs()
    mask[0] = False
    with torch.no_grad():
        keys, values = eager.project_memory(encoder_states)
        expected, _ = eager(query_states, keys, values, mask)
        actual, weights = sdpa(query_states, keys, values, mask)
        # Asking for weights takes the eager path even under "sdpa".
        with_weights, returned = sdpa(query_states, keys, values, mask, output_attentions=True)
    assert weights is None and returned is not None
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(with_weights, expected, atol=1e-6, rtol=1e-6)


def additive_inputs(dtype=torch.float32, seed=4):
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(2, HEADS, 9, HEAD_DIM, generator=generator, dtype=dtype).requires_grad_()
    keys = torch.randn(2, HEADS, 7, HEAD_DIM, generator=generator, dtype=dtype).requires_grad_()
    score_vector = torch.randn(HEADS, HEAD_DIM, generator=generator, dtype=dtype).requires_grad_()
    return query, keys, score_vector


def test_additive_chunking_gives_identical_scores_and_gradients():
    query, keys, score_vector = additive_inputs(seed=3)
    whole = additive_scores(query, keys, score_vector)
    # One target position per chunk: 2 * 4 * 7 * 4 elements each, nine chunks.
    chunked = additive_scores(query, keys, score_vector, chunk_size=2 * HEADS * 7 * HEAD_DIM)
    torch.testing.assert_close(chunked, whole)
    upstream = torch.randn_like(whole)
    expected = torch.autograd.grad(whole, (query, keys, score_vector), upstream)
    actual = torch.autograd.grad(chunked, (query, keys, score_vector), upstream)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e)


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
    error = (attention_module._tanh(x).double() - torch.tanh(x.double())).abs().max().item()
    assert error < 1e-6
    assert attention_module._tanh(torch.zeros(1)).item() == 0.0
    torch.testing.assert_close(attention_module._tanh(-x), -attention_module._tanh(x), atol=0, rtol=0)


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


def test_heads_have_their_own_projections():
    """Changing head 0's slice of W_q changes only head 0's weights."""
    attention = make_attention("scaled_dot")
    query_states, encoder_states, mask = inputs()
    with torch.no_grad():
        keys, values = attention.project_memory(encoder_states)
        _, before = attention(query_states, keys, values, mask, output_attentions=True)
        attention.q_proj.weight[:HEAD_DIM] += 1.0
        _, after = attention(query_states, keys, values, mask, output_attentions=True)
    assert not torch.allclose(before[:, 0], after[:, 0])
    torch.testing.assert_close(before[:, 1:], after[:, 1:])


def test_none_has_no_attention_module():
    config = Seq2SeqAttentionConfig(
        vocab_size=10, hidden_size=HIDDEN, num_attention_heads=HEADS, attention_type="none"
    )
    with pytest.raises(ValueError, match="attention_type='none' has no attention module"):
        MultiHeadCrossAttention(config)
