"""The alignment functions against reference computations written out formula by formula."""

import math

import pytest
import torch

from hf_attention import MultiHeadAttention, Seq2SeqAttentionConfig, additive_scores
from hf_attention.modeling_seq2seq_attention import Seq2SeqAttentionSelfAttentionLayer

BATCH, TGT, SRC, HIDDEN, HEADS = 3, 5, 6, 16, 4
HEAD_DIM = HIDDEN // HEADS


def make_attention(attention_type: str, implementation: str = "eager", **kwargs) -> MultiHeadAttention:
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(
        vocab_size=10, hidden_size=HIDDEN, num_attention_heads=HEADS, attention_type=attention_type, **kwargs
    )
    config._attn_implementation = implementation
    attention = MultiHeadAttention(config).eval()
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


def reference(attention: MultiHeadAttention, query_states, encoder_states, mask):
    """e_ij written per head as in the papers, then softmax over real source positions and sum_j a_ij v_j."""
    (batch, tgt_len, _), src_len = query_states.shape, encoder_states.shape[1]
    q = attention.q_proj(query_states).view(batch, tgt_len, HEADS, HEAD_DIM)
    k = attention.k_proj(encoder_states).view(batch, src_len, HEADS, HEAD_DIM)
    v = attention.v_proj(encoder_states).view(batch, src_len, HEADS, HEAD_DIM)
    scores = torch.empty(batch, HEADS, tgt_len, src_len)
    for b in range(batch):
        for h in range(HEADS):
            for i in range(tgt_len):
                for j in range(src_len):
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
    context = torch.einsum("bhij,bjhd->bihd", weights, v).reshape(batch, tgt_len, HIDDEN)
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


@pytest.mark.parametrize("self_attention_type", ["bahdanau", "scaled_dot", "dot", "general"])
def test_self_attention_layer_matches_the_pre_norm_block_written_out(self_attention_type):
    """Q = K = V = LN(x): the alignment of a sentence with itself, then the residual and the feed-forward network."""
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(
        vocab_size=10,
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        num_hidden_layers=1,
        attention_type="none",  # the cross attention's function is not the self-attention's
        encoder_layer_types=["self_attention"],
        self_attention_type=self_attention_type,
        intermediate_size=24,
    )
    config._attn_implementation = "eager"
    layer = Seq2SeqAttentionSelfAttentionLayer(config, 0).eval()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.normal_(0, 0.5)
    _, states, mask = inputs()
    with torch.no_grad():
        output, weights, cross_weights = layer(states, mask, output_attentions=True)
        normed = torch.nn.functional.layer_norm(
            states, (HIDDEN,), layer.self_attention_layer_norm.weight, layer.self_attention_layer_norm.bias
        )
        context, expected_weights = reference(layer.self_attention, normed, normed, mask)
        after_attention = states + context
        normed = torch.nn.functional.layer_norm(
            after_attention, (HIDDEN,), layer.feed_forward_layer_norm.weight, layer.feed_forward_layer_norm.bias
        )
        hidden = torch.relu(normed @ layer.fc1.weight.T + layer.fc1.bias)
        expected_output = after_attention + hidden @ layer.fc2.weight.T + layer.fc2.bias
    assert layer.self_attention.attention_type == self_attention_type
    assert cross_weights is None  # an encoder layer has no cross attention
    assert weights.shape == (BATCH, HEADS, SRC, SRC)
    torch.testing.assert_close(weights, expected_weights, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(output, expected_output, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("attention_type", ["bahdanau", "scaled_dot", "dot", "general"])
def test_a_causal_mask_per_query_equals_attending_to_the_prefix_alone(attention_type, implementation):
    """Decoder self-attention: query i with a [batch, tgt, src] mask reads exactly what keys 0..i alone give."""
    attention = make_attention(attention_type, implementation)
    _, states, _ = inputs()
    causal = torch.ones(SRC, SRC, dtype=torch.bool).tril().expand(BATCH, SRC, SRC)
    with torch.no_grad():
        keys, values = attention.project_memory(states)
        context, _ = attention(states, keys, values, causal)
        for i in range(SRC):
            prefix = torch.ones(BATCH, i + 1, dtype=torch.bool)
            expected_context, expected_weights = reference(attention, states[:, i : i + 1], states[:, : i + 1], prefix)
            torch.testing.assert_close(context[:, i : i + 1], expected_context, atol=1e-5, rtol=1e-4)
        _, weights = attention(states, keys, values, causal, output_attentions=True)
    assert (weights.triu(diagonal=1) == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(BATCH, HEADS, SRC))


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
        MultiHeadAttention(config)


def test_additive_chunking_gives_identical_scores_and_gradients():
    generator = torch.Generator().manual_seed(3)
    query = torch.randn(2, HEADS, 9, HEAD_DIM, generator=generator).requires_grad_()
    keys = torch.randn(2, HEADS, 7, HEAD_DIM, generator=generator).requires_grad_()
    score_vector = torch.randn(HEADS, HEAD_DIM, generator=generator).requires_grad_()
    whole = additive_scores(query, keys, score_vector)
    # One target position per chunk: 2 * 4 * 7 * 4 elements each, nine chunks.
    chunked = additive_scores(query, keys, score_vector, chunk_size=2 * HEADS * 7 * HEAD_DIM)
    torch.testing.assert_close(chunked, whole)
    upstream = torch.randn_like(whole)
    expected = torch.autograd.grad(whole, (query, keys, score_vector), upstream)
    actual = torch.autograd.grad(chunked, (query, keys, score_vector), upstream)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e)
