"""The alignment functions of attentional NMT and the multi-head attention that wraps them, as cross attention
(decoder queries over encoder keys and values) or as self-attention (queries, keys and values from one sentence).

In query/key/value terms (Bahdanau et al. 2015, "Neural machine translation by jointly learning to align and
translate"): the decoder, about to predict target word y_i, asks a *query* (its state) against *keys* (the encoder
states h_j of every source word). An alignment function scores each pair, e_ij; a softmax over the source turns the
scores into weights a_ij (the alignment a user can plot); the context c_i = sum_j a_ij v_j is built from the *values*
(the encoder states again). Every alignment function here is multi-head (Vaswani et al. 2017): each head has its own
learned projections of Q, K and V, scores in its own `head_dim`-wide subspace, and the heads' contexts are concatenated
and projected back to `hidden_size`.

Alignment functions (`config.attention_type`), per head, with q = W_q s_i and k = W_k h_j:
- `"bahdanau"`: additive, e_ij = v_a^T tanh(q + k) (W_a and U_a of the paper are W_q and W_k here, U_a with its bias).
- `"scaled_dot"`: e_ij = q.k / sqrt(head_dim).
- `"dot"`: e_ij = q.k.
- `"general"`: e_ij = q^T W_a k (Luong et al. 2015), with one [head_dim, head_dim] matrix per head.
`"none"` has no attention module at all: the decoder sees one fixed context vector (see the modeling file).

Everything that depends only on the source, the projected keys (with U_a / W_a already applied) and values, is computed
once per source sentence by `project_memory` and kept in the cache across decoding steps and beams. The additive
score's large intermediate is never stored by the fused kernels of `fused_additive_attention.py`, the default wherever
they compile and the scores are large enough to gain from them; the eager path here bounds it by chunks.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .configuration_seq2seq_attention import Seq2SeqAttentionConfig
from .fused_additive_attention import FUSED_MIN_ELEMENTS, fused_additive_scores, fused_kernels_available


def is_tracing() -> bool:
    """True while `torch.compile` or `torch.export` traces the code (rather than running it)."""
    is_exporting = getattr(torch.compiler, "is_exporting", lambda: False)  # torch < 2.7 has no is_exporting
    return torch.compiler.is_compiling() or is_exporting()


def _additive_scores_chunk(query: torch.Tensor, keys: torch.Tensor, score_vector: torch.Tensor) -> torch.Tensor:
    # [batch, heads, tgt, 1, head_dim] + [batch, heads, 1, src, head_dim]: additive attention's one big intermediate
    features = torch.tanh(query.unsqueeze(-2) + keys.unsqueeze(-3))
    return torch.matmul(features, score_vector[None, :, None, :, None]).squeeze(-1)


def additive_scores(
    query: torch.Tensor,
    keys: torch.Tensor,
    score_vector: torch.Tensor,
    chunk_size: int = 2**24,
    compiled: bool | None = None,
) -> torch.Tensor:
    """Bahdanau's alignment scores e_ij = v^T tanh(q_i + k_j), head by head.

    The intermediate tanh(q_i + k_j) has `batch * heads * tgt_len * src_len * head_dim` elements. The eager path bounds
    memory by scoring the target positions in chunks of at most `chunk_size` such elements; when there is more than
    one chunk, each chunk is checkpointed so that backward recomputes it instead of keeping every chunk alive. The
    fused path (`fused_additive_attention.FusedAdditiveScores`) never stores the intermediate at all, so it needs no
    chunks. Both give the same values within float32 rounding.

    Args:
        query: [batch, heads, tgt_len, head_dim], the projected decoder states W_a s_i.
        keys: [batch, heads, src_len, head_dim], the projected encoder states U_a h_j (+ bias).
        score_vector: [heads, head_dim], v_a of each head.
        chunk_size: most elements of the intermediate materialised at once (eager path).
        compiled: True for the fused kernels (`torch.compile`d, with a hand-written backward), False for the eager
            path, None to choose: fused when the intermediate has at least `FUSED_MIN_ELEMENTS` elements, outside an
            enclosing `torch.compile` (which fuses the eager path itself). Where the kernels do not compile, the eager
            path runs, after one warning.

    Returns:
        scores: [batch, heads, tgt_len, src_len].
    """
    batch, heads, tgt_len, head_dim = query.shape
    src_len = keys.shape[-2]
    if compiled is None:
        compiled = batch * heads * tgt_len * src_len * head_dim >= FUSED_MIN_ELEMENTS and not is_tracing()
    if compiled and fused_kernels_available(query.device.type):
        return fused_additive_scores(query, keys, score_vector)
    positions_per_chunk = max(1, chunk_size // max(1, batch * heads * src_len * head_dim))
    if positions_per_chunk >= tgt_len:
        return _additive_scores_chunk(query, keys, score_vector)
    chunks = []
    for start in range(0, tgt_len, positions_per_chunk):
        query_chunk = query[:, :, start : start + positions_per_chunk]
        if torch.is_grad_enabled():
            chunks.append(checkpoint(_additive_scores_chunk, query_chunk, keys, score_vector, use_reentrant=False))
        else:
            chunks.append(_additive_scores_chunk(query_chunk, keys, score_vector))
    return torch.cat(chunks, dim=2)


def dot_product_scores(query: torch.Tensor, keys: torch.Tensor, scaling: float = 1.0) -> torch.Tensor:
    """The scores e_ij = scaling * q_i.k_j of `"scaled_dot"` (scaling 1 / sqrt(head_dim)), `"dot"` and `"general"`
    (whose keys already hold W_a k, see `MultiHeadAttention.project_memory`).

    Args:
        query: [batch, heads, tgt_len, head_dim].
        keys: [batch, heads, src_len, head_dim].
        scaling: the factor on every score.

    Returns:
        scores: [batch, heads, tgt_len, src_len].
    """
    return torch.matmul(query, keys.transpose(-1, -2)) * scaling


class MultiHeadAttention(nn.Module):
    """Multi-head attention of queries over keys/values, with a swappable alignment function.

    As cross attention the queries are decoder states and the keys/values encoder states; as self-attention all three
    come from the same sentence (`attention_type` then is `config.self_attention_type`). `config._attn_implementation`
    picks how dot-product scores are computed: `"sdpa"` runs `torch.nn.functional.scaled_dot_product_attention` (no
    weights returned), `"eager"` computes the weights explicitly. Whenever weights are requested
    (`output_attentions=True`) the eager path runs, whatever the setting. The additive (`"bahdanau"`) score has no
    SDPA form and always runs `additive_scores`.
    """

    def __init__(self, config: Seq2SeqAttentionConfig, attention_type: str | None = None):
        super().__init__()
        attention_type = config.attention_type if attention_type is None else attention_type
        if attention_type == "none":
            raise ValueError("attention_type='none' has no attention module; the decoder uses a fixed context.")
        self.config = config
        self.attention_type = attention_type
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.attention_dropout = config.attention_dropout
        hidden_size = config.hidden_size
        is_additive = self.attention_type == "bahdanau"

        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        # The additive score has its bias inside the tanh; putting it on U_a k lets it be precomputed per source.
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=is_additive)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        if is_additive:
            self.score_vector = nn.Parameter(torch.empty(self.num_heads, self.head_dim))
        if self.attention_type == "general":
            self.bilinear = nn.Parameter(torch.empty(self.num_heads, self.head_dim, self.head_dim))
        self.scaling = self.head_dim**-0.5 if self.attention_type == "scaled_dot" else 1.0

    def _split_heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, length, _ = states.shape
        return states.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def project_memory(self, encoder_hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project the encoder states into this layer's keys and values, once per source sentence.

        Args:
            encoder_hidden_states: [batch, src_len, hidden_size].

        Returns:
            keys: [batch, heads, src_len, head_dim] (for `"general"`, with W_a already applied: W_a k).
            values: [batch, heads, src_len, head_dim].
        """
        keys = self._split_heads(self.k_proj(encoder_hidden_states))
        if self.attention_type == "general":
            # q^T W k == q . (W k): folding W into the keys makes "general" a dot product over cached keys.
            keys = torch.einsum("bhsd,hed->bhse", keys, self.bilinear)
        values = self._split_heads(self.v_proj(encoder_hidden_states))
        return keys, values

    def alignment_scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """e_ij of this layer's alignment function, for every head.

        Args:
            query: [batch, heads, tgt_len, head_dim], the projected decoder states.
            keys: [batch, heads, src_len, head_dim], from `project_memory`.

        Returns:
            scores: [batch, heads, tgt_len, src_len].
        """
        if self.attention_type == "bahdanau":
            return additive_scores(
                query,
                keys,
                self.score_vector,
                self.config.attention_chunk_size,
                compiled=self.config.compile_additive_attention,
            )
        return dot_product_scores(query, keys, self.scaling)

    def forward(
        self,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Args:
            hidden_states: [batch, tgt_len, hidden_size], the decoder states asking the queries.
            keys: [batch, heads, src_len, head_dim], from `project_memory`.
            values: [batch, heads, src_len, head_dim], from `project_memory`.
            encoder_attention_mask: [batch, src_len] or [batch, tgt_len, src_len], bool, True where a key may be
                attended to: at real source tokens, or per query (the causal mask of decoder self-attention).
            output_attentions: return the weights a_ij.

        Returns:
            context: [batch, tgt_len, hidden_size], sum_j a_ij v_j per head, concatenated and projected.
            weights: [batch, heads, tgt_len, src_len] or None. Masked keys get exactly 0; each row sums to 1, except
                for a query with no key to attend to (a source that is all padding), whose row and context are zeros.
        """
        batch, tgt_len, _ = hidden_states.shape
        query = self._split_heads(self.q_proj(hidden_states))
        if encoder_attention_mask.dim() == 2:
            encoder_attention_mask = encoder_attention_mask[:, None, :]
        has_keys = encoder_attention_mask.any(dim=-1, keepdim=True)
        # A query with no key would make every score -inf and the softmax NaN: let it attend anywhere, then zero it.
        key_mask = (encoder_attention_mask | ~has_keys)[:, None]
        source_present = has_keys[:, None]
        dropout = self.attention_dropout if self.training else 0.0

        # SDPA returns no weights and has no additive form: everything else takes the eager path.
        if not output_attentions and self.attention_type != "bahdanau" and self.config._attn_implementation == "sdpa":
            context = F.scaled_dot_product_attention(
                query, keys, values, attn_mask=key_mask, dropout_p=dropout, scale=self.scaling
            )
            context = context * source_present.to(context.dtype)
            weights = None
        else:
            scores = self.alignment_scores(query, keys)
            scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
            weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
            weights = weights * source_present.to(weights.dtype)
            # As in transformers' eager attention: the returned weights are the ones used (after dropout).
            weights = F.dropout(weights, p=dropout, training=self.training)
            context = torch.matmul(weights, values)
            weights = weights if output_attentions else None
        context = context.transpose(1, 2).reshape(batch, tgt_len, -1)
        return self.o_proj(context), weights


__all__ = ["MultiHeadAttention", "additive_scores", "dot_product_scores", "is_tracing"]
