"""PyTorch attentional RNN encoder-decoder (Bahdanau et al. 2015) with a swappable, multi-head attention function.

Encoder: shared token embeddings, then `num_hidden_layers` bidirectional RNN layers (GRU or LSTM), each direction
`hidden_size // 2` wide so that every layer outputs `hidden_size`; residual connections from the second layer on,
dropout on every layer's input. Padding may be on either side: real tokens are gathered to the front of each row, each
direction reads them before any padding (so padding never reaches the states of real tokens), and the outputs are put
back at the original positions with zeros at padded ones.

Decoder: `num_hidden_layers` unidirectional RNN layers, each followed by cross attention over the encoder states.
Layer l at target position i:

    r_i  = RNN_l(r_{i-1}, x_i)                     the query: the layer's state after the tokens y_0 .. y_{i-1}
    c_i  = Attention_l(query=r_i, keys=h, values=h) the context: sum_j a_ij h_j (projected per head)
    x'_i = tanh(W_c [r_i; c_i]) (+ x_i from the second layer on)

where x_i is the shifted target embedding for the first layer and the previous layer's output otherwise; the top
layer's output goes through the (optionally tied) output projection to predict y_i. Initial states are
tanh(W_s mean_j h_j).

The query and Bahdanau's s_{i-1}: in the paper, the query for y_i is the previous decoder state s_{i-1}, itself
computed from y_{i-2}, s_{i-2} and the previous context c_{i-1} ("input feeding"), which forces a Python loop over
target positions. Here the query r_i has read the same target history, y_{<i} (the decoder input at position i is
y_{i-1}), but the context does not feed back into the same layer's recurrence. That is what lets teacher-forced
training run every RNN layer over the whole target at once (one fused cuDNN/MKL call) and every attention for all
positions in one batched call; with two or more layers, the context of layer l does enter the recurrence of layer
l+1. Every query depends only on target tokens before i, so step-by-step decoding with the cache gives the
teacher-forced result.

`attention_type="none"` is the fixed-context encoder-decoder (Cho et al. 2014): no attention; every target position
gets the same context, the mean of the encoder states, and `cross_attentions` is None even with `output_attentions`.
Self-attention (`config.encoder_layer_types`, `config.decoder_layer_types`): any layer may instead be a pre-norm
self-attention block, whose queries, keys and values all come from the same sentence, so its weights align that
sentence with itself. In the decoder the block is causal (position i sees targets 0..i only, so cached decoding equals
the teacher-forced pass) and is followed by its own cross attention over the encoder states. Self-attention encoder
layers under the RNN decoder give Chen et al. 2018's hybrid; self-attention on both sides gives a Transformer. A stack
whose first layer is self-attention gets sinusoidal positions, since self-attention alone does not see word order.
`encoder_attentions` and `decoder_attentions` hold one tensor per self-attention layer of their stack (RNN layers
contribute no entry); `cross_attentions` one per decoder layer.
"""

import contextvars
import functools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from transformers.utils import CONFIG_NAME, cached_file

from .attention import MultiHeadAttention, is_tracing
from .cache_seq2seq_attention import Seq2SeqAttentionCache, Seq2SeqAttentionLayerCache
from .configuration_seq2seq_attention import Seq2SeqAttentionConfig
from .pipeline_seq2seq_attention import TranslationPipeline  # noqa: F401  (saved beside the model: see its docstring)
from .weights_manifest import check_architecture, check_weights, read_manifest, write_manifest

# Checkpoints saved before the encoder's two directions became two modules (2026-11-25) hold one bidirectional RNN per
# encoder layer, `rnn.*` and `rnn.*_reverse`; `from_pretrained` renames them on the way in.
LEGACY_KEY_MAPPING = {
    r"\.rnn\.(\w+_l0)_reverse$": r".backward_rnn.\1",  # only encoder layers had a reverse direction
    r"(encoder\.layers\.\d+)\.rnn\.": r"\1.forward_rnn.",
}


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Decoder inputs from labels: prepend the start token, drop the last label, replace -100 by padding.

    Args:
        labels: [batch, tgt_len].

    Returns:
        decoder_input_ids: [batch, tgt_len].
    """
    if decoder_start_token_id is None:
        raise ValueError("config.decoder_start_token_id is None: it is needed to make decoder inputs from labels.")
    if pad_token_id is None:
        raise ValueError("config.pad_token_id is None: it is needed to replace -100 in the labels.")
    shifted = labels.new_empty(labels.shape)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


# transformers up to 5.23 names the decoding cache `past_key_values`, in arguments and outputs; 5.24 renamed it to
# `cache` (and passes `cache=` from `generate`). The model takes both names and writes outputs with the installed one.
CACHE_OUTPUT_FIELD = "cache" if "cache" in Seq2SeqLMOutput.__dataclass_fields__ else "past_key_values"


def _resolve_cache(past_key_values, cache):
    """The one cache passed under either name; a `ValueError` when two different ones are."""
    if past_key_values is not None and cache is not None and past_key_values is not cache:
        raise ValueError("Pass the decoding cache once, as `cache` or `past_key_values`, not two different ones.")
    return cache if cache is not None else past_key_values


# False while `generate` runs its steps: it checks its inputs once, and the tokens it feeds back are in range.
_CHECK_VALUES = contextvars.ContextVar("seq2seq_attention_check_values", default=True)


def _checks_apply() -> bool:
    # Checks of tensor values read them on the host (a device sync): they would break torch.export and fullgraph
    # compilation, so they run in eager mode only, and once per `generate` call rather than at every step.
    return _CHECK_VALUES.get() and not is_tracing()


def _check_ids_tensor(name: str, ids: torch.Tensor) -> None:
    """Shape and dtype checks of a token-id tensor (no host sync: safe to run while tracing)."""
    if ids.dim() != 2:
        raise ValueError(f"{name} must be 2-D [batch, length]; got shape {tuple(ids.shape)}.")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise ValueError(f"{name} has dtype {ids.dtype}; token ids must be an integer tensor (torch.long).")
    if ids.shape[0] == 0:
        raise ValueError(f"{name} has shape {tuple(ids.shape)}: the batch is empty.")
    if ids.shape[1] == 0:
        raise ValueError(f"{name} has shape {tuple(ids.shape)}: each sequence needs at least one token.")


def _check_token_ids(name: str, ids: torch.Tensor, vocab_size: int) -> None:
    _check_ids_tensor(name, ids)
    if not _checks_apply():
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise ValueError(f"{name} contains token id {bad}, outside the vocabulary [0, {vocab_size - 1}].")


def _check_mask(name: str, mask: torch.Tensor, ids_name: str, shape: torch.Size) -> None:
    if mask.shape != shape:
        raise ValueError(f"{name} has shape {tuple(mask.shape)} but {ids_name} has shape {tuple(shape)}.")


def _check_decoder_mask(decoder_attention_mask: torch.Tensor, batch_size: int, num_past: int, num_new: int) -> None:
    """The decoder reads its inputs in order, so only right padding (ones, then zeros) leaves the real positions'
    states unchanged; any other mask is refused rather than ignored.

    Args:
        decoder_attention_mask: [batch, num_new] or [batch, num_past + num_new] (as `generate` grows it).
    """
    shape = tuple(decoder_attention_mask.shape)
    allowed = [(batch_size, num_new)] + ([(batch_size, num_past + num_new)] if num_past else [])
    if shape not in allowed:
        raise ValueError(
            f"decoder_attention_mask has shape {shape}; expected {' or '.join(map(str, allowed))} "
            "(batch, decoder positions)."
        )
    if not _checks_apply():
        return
    mask = decoder_attention_mask.to(torch.int64)
    if bool(((mask != 0) & (mask != 1)).any()) or bool((mask[:, 1:] > mask[:, :-1]).any()):
        raise ValueError(
            "decoder_attention_mask must be right padding (ones, then zeros, in every row): the recurrent decoder "
            "reads its inputs in order, so padding before a real token would change that token's state. Put the "
            "padding after the target tokens."
        )


def _masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real positions; zeros for a row that is all padding.

    Args:
        states: [batch, src_len, hidden_size].
        mask: [batch, src_len], bool.

    Returns:
        [batch, hidden_size].
    """
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _rnn_class(config: Seq2SeqAttentionConfig) -> type[nn.RNNBase]:
    return nn.GRU if config.rnn_type == "gru" else nn.LSTM


def _reverse_real_tokens(states: torch.Tensor, reverse_positions: torch.Tensor | None) -> torch.Tensor:
    """Reverse the order of each row's real tokens, leaving the padding after them in place (its own inverse).

    Args:
        states: [batch, src_len, width], real tokens first in every row.
        reverse_positions: [batch, src_len], int64, `length - 1 - t` for t < length, else t; None when no row has
            padding (a plain flip).

    Returns:
        [batch, src_len, width].
    """
    if reverse_positions is None:
        return states.flip(1)
    return states.gather(1, reverse_positions.unsqueeze(-1).expand(-1, -1, states.shape[-1]))


# The keyword arguments of `from_pretrained` that say where and how to read a checkpoint's files.
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")


def _unreadable_weights_file(checkpoint) -> str:
    """The first `*.safetensors` file of a local checkpoint folder that does not open, else a description."""
    folder = Path(checkpoint)
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            with safe_open(path, framework="pt"):
                pass
        except SafetensorError:
            return str(path)
    return f"the weights file of {checkpoint}"


def _attention_type_of_weights(loading_info: dict) -> str | None:
    """The attention type(s) a checkpoint's cross-attention weights belong to, quoted for a message, when they do not
    fit the model built from its config; None when they fit.

    Only the parameters tell the types apart: "dot" and "scaled_dot" have the same ones.
    """
    unexpected = [key for key in loading_info["unexpected_keys"] if ".cross_attention." in key]
    missing = [key for key in loading_info["missing_keys"] if ".cross_attention." in key]
    if not unexpected and not missing or len(missing) < len(loading_info["missing_keys"]):
        # Nothing differs, or more than the attention is missing: not another attention type's checkpoint.
        return None
    if any(key.endswith("score_vector") for key in unexpected):
        return "'bahdanau'"
    if any(key.endswith("bilinear") for key in unexpected):
        return "'general'"
    if not unexpected and any(key.endswith("q_proj.weight") for key in missing):
        return "'none'"
    return "'scaled_dot' or 'dot'"


def _check_against_manifest(model_class, path, kwargs: dict, hub_kwargs: dict, manifest: dict, manifest_path):
    """Refuse, before any weight is read, a `config.json` or a `from_pretrained` override whose architecture differs
    from the one `manifest` records for the weights."""
    config_file = cached_file(path, CONFIG_NAME, **hub_kwargs)
    config_dict, _ = model_class.config_class.get_config_dict(path, **hub_kwargs)
    # Checked on the file's own text: a config of another model type would otherwise be read as this one.
    check_architecture(manifest, manifest_path, {"model_type": config_dict.get("model_type")}, config_file)
    saved = model_class.config_class.from_pretrained(path, **hub_kwargs).architecture()
    check_architecture(manifest, manifest_path, saved, config_file)
    if isinstance(kwargs.get("config"), PreTrainedConfig):
        config = kwargs["config"]
        requested = {name: getattr(config, name, None) for name in saved}
        check_architecture(manifest, manifest_path, requested, f"the config passed to from_pretrained({path!r})")
    overrides = {name: kwargs[name] for name in saved if name in kwargs}
    for name, value in overrides.items():
        check_architecture(manifest, manifest_path, {name: value}, f"from_pretrained({path!r}, {name}={value!r})")


def drop_words(embeddings: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Word dropout: zero the whole embedding of each token with probability `rate` in training.

    Args:
        embeddings: [batch, seq_len, hidden_size].

    Returns:
        [batch, seq_len, hidden_size]: each position either zero or its embedding scaled by 1 / (1 - rate), as
        dropout scales, so that the expected input is the same in training and inference; unchanged when not
        training or `rate` is 0.
    """
    if not training or rate == 0:
        return embeddings
    keep = torch.empty(embeddings.shape[:2] + (1,), dtype=embeddings.dtype, device=embeddings.device)
    return embeddings * keep.bernoulli_(1.0 - rate).div_(1.0 - rate)


@functools.cache
def cpu_has_bf16_kernels() -> bool:
    """Whether oneDNN has bf16 kernels on this CPU (AVX-512 BF16 or AMX). Without them its bf16 LSTM fails to build
    and other bf16 ops are emulated, slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def run_rnn(rnn: nn.RNNBase, inputs: torch.Tensor, state=None):
    """`rnn(inputs, state)`, in float32 where CPU autocast asks for bf16 and the CPU has no bf16 RNN kernel (without
    this, bf16 training of an LSTM stops with oneDNN's "could not create a primitive descriptor").

    Args:
        inputs: [batch, length, input_size].
        state: the RNN's initial state, [1, batch, hidden] (a pair of them for an LSTM), or None.
    """
    if (
        inputs.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
        and not cpu_has_bf16_kernels()
    ):
        with torch.autocast("cpu", enabled=False):
            if state is not None:
                state = tuple(part.float() for part in state) if isinstance(state, tuple) else state.float()
            return rnn(inputs.float(), state)
    return rnn(inputs, state)


def flatten_rnn_weights(rnn: nn.Module) -> None:
    """Re-pack `rnn`'s weights into one contiguous block for cuDNN/oneDNN, where that applies: not while tracing (an
    exported graph cannot record the in-place re-pack), not for an int8 RNN (its weights are packed already)."""
    if not is_tracing() and hasattr(rnn, "flatten_parameters"):
        rnn.flatten_parameters()


class Seq2SeqAttentionEncoderLayer(GradientCheckpointingLayer):
    """One bidirectional RNN layer; each direction has `hidden_size // 2` units so the output stays `hidden_size`.

    The two directions are two unidirectional RNNs rather than one `bidirectional=True` module: the backward one reads
    each row's real tokens reversed, with the padding after them, so neither direction ever reads padding before a
    real token. That gives the packed-sequence result without packing, which on the CPU would leave oneDNN's fused
    LSTM for a slower per-step loop.
    """

    def __init__(self, config: Seq2SeqAttentionConfig, layer_idx: int):
        super().__init__()
        rnn_class = _rnn_class(config)
        self.forward_rnn = rnn_class(config.hidden_size, config.hidden_size // 2, batch_first=True)
        self.backward_rnn = rnn_class(config.hidden_size, config.hidden_size // 2, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.use_residual = layer_idx > 0

    def forward(self, hidden_states: torch.Tensor, reverse_positions: torch.Tensor | None) -> torch.Tensor:
        """
        Args:
            hidden_states: [batch, src_len, hidden_size], real tokens first in every row.
            reverse_positions: [batch, src_len], see `_reverse_real_tokens`; None when no row has padding.

        Returns:
            [batch, src_len, hidden_size]; positions past a row's real tokens hold values that no real position
            depends on (the encoder zeroes them).
        """
        flatten_rnn_weights(self.forward_rnn)
        flatten_rnn_weights(self.backward_rnn)
        inputs = self.dropout(hidden_states)
        forward_output, _ = run_rnn(self.forward_rnn, inputs)
        backward_output, _ = run_rnn(self.backward_rnn, _reverse_real_tokens(inputs, reverse_positions))
        output = torch.cat([forward_output, _reverse_real_tokens(backward_output, reverse_positions)], dim=-1)
        return hidden_states + output if self.use_residual else output


def sinusoidal_positions(length: int, hidden_size: int, device=None, dtype=None) -> torch.Tensor:
    """The sinusoidal position encodings of Vaswani et al. (2017): sin and cos of position / 10000^(2i / d).

    Returns:
        [length, hidden_size]; the first half of the features are the sines, the second half the cosines.
    """
    half = hidden_size // 2
    frequencies = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * (-math.log(10000.0) / half))
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)


def add_positions(embeddings: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """Token embeddings scaled by sqrt(hidden_size), as in Vaswani et al., plus the sinusoidal encodings of their
    positions, so that neither drowns the other.

    Args:
        embeddings: [batch, seq_len, hidden_size], the tokens at positions offset .. offset + seq_len - 1.
        offset: the position of the first token (the tokens already in a decoding cache).

    Returns:
        [batch, seq_len, hidden_size].
    """
    length, hidden_size = embeddings.shape[1], embeddings.shape[2]
    positions = sinusoidal_positions(offset + length, hidden_size, embeddings.device, embeddings.dtype)[offset:]
    return embeddings * hidden_size**0.5 + positions


class Seq2SeqAttentionSelfAttentionLayer(GradientCheckpointingLayer):
    """A pre-norm self-attention block: x + SelfAttention(LN(x)); in the decoder then x + CrossAttention(LN(x)) over
    the source; then x + FFN(LN(x)).

    Queries, keys and values of the self-attention all come from the layer's input, so its weights a_ij align the
    sentence with itself; its alignment function is `config.self_attention_type`, the cross attention's
    `config.attention_type`. In the decoder the self-attention is causal (the mask lets position i see positions
    <= i only), which is what makes step-by-step decoding with the cache give the teacher-forced result. The
    feed-forward network is W_2 dropout(relu(W_1 x)), `intermediate_size` wide.
    """

    def __init__(self, config: Seq2SeqAttentionConfig, layer_idx: int, is_decoder: bool = False):
        super().__init__()
        self.self_attention_layer_norm = nn.LayerNorm(config.hidden_size)
        self.self_attention = MultiHeadAttention(config, config.self_attention_type)
        self.cross_attention_layer_norm = nn.LayerNorm(config.hidden_size) if is_decoder else None
        self.cross_attention = MultiHeadAttention(config) if is_decoder else None
        self.feed_forward_layer_norm = nn.LayerNorm(config.hidden_size)
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        output_attentions: bool = False,
        encoder_keys: torch.Tensor | None = None,
        encoder_values: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        layer_cache: Seq2SeqAttentionLayerCache | None = None,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """
        Args:
            hidden_states: [batch, seq_len, hidden_size], the new positions only when `layer_cache` holds earlier ones.
            attention_mask: the keys each position may attend to: [batch, seq_len], bool, True at real tokens (the
                encoder), or [batch, seq_len, past + seq_len], bool, the causal mask (the decoder).
            output_attentions: return the attention weights.
            encoder_keys: [batch, heads, src_len, head_dim], the cross attention's keys (decoder only).
            encoder_values: [batch, heads, src_len, head_dim] (decoder only).
            encoder_attention_mask: [batch, src_len], bool, True at real source tokens (decoder only).
            layer_cache: the self-attention keys and values of earlier positions (decoder only), or None.
            use_cache: append this call's keys and values to `layer_cache`.

        Returns:
            output: [batch, seq_len, hidden_size].
            self_weights: [batch, heads, seq_len, past + seq_len] or None; masked keys get exactly 0.
            cross_weights: [batch, heads, seq_len, src_len] or None (always None in the encoder).
        """
        normed = self.self_attention_layer_norm(hidden_states)
        keys, values = self.self_attention.project_memory(normed)
        if layer_cache is not None and use_cache:
            keys, values = layer_cache.update_self_attention(keys, values)
        elif layer_cache is not None and layer_cache.self_attention is not None:
            # Continuing from a cache without writing to it: read the past keys and values, leave them unchanged.
            keys = torch.cat([layer_cache.self_attention.keys, keys], dim=-2)
            values = torch.cat([layer_cache.self_attention.values, values], dim=-2)
        context, self_weights = self.self_attention(normed, keys, values, attention_mask, output_attentions)
        hidden_states = hidden_states + self.dropout(context)
        cross_weights = None
        if self.cross_attention is not None:
            normed = self.cross_attention_layer_norm(hidden_states)
            context, cross_weights = self.cross_attention(
                normed, encoder_keys, encoder_values, encoder_attention_mask, output_attentions
            )
            hidden_states = hidden_states + self.dropout(context)
        feed_forward = self.fc2(self.dropout(F.relu(self.fc1(self.feed_forward_layer_norm(hidden_states)))))
        return hidden_states + self.dropout(feed_forward), self_weights, cross_weights


class Seq2SeqAttentionDecoderLayer(GradientCheckpointingLayer):
    """One unidirectional RNN layer whose state queries the encoder through cross attention (see module docstring)."""

    def __init__(self, config: Seq2SeqAttentionConfig, layer_idx: int):
        super().__init__()
        self.rnn = _rnn_class(config)(config.hidden_size, config.hidden_size, batch_first=True)
        self.cross_attention = MultiHeadAttention(config) if config.attention_type != "none" else None
        # Luong et al.'s attentional hidden state tanh(W_c [r; c]).
        self.attention_combine = nn.Linear(2 * config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.use_residual = layer_idx > 0

    def forward(
        self,
        hidden_states: torch.Tensor,
        rnn_state: torch.Tensor,
        keys: torch.Tensor | None,
        values: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor,
        fixed_context: torch.Tensor | None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """
        Args:
            hidden_states: [batch, tgt_len, hidden_size], this layer's input x.
            rnn_state: [batch, num_states, hidden_size], the state before the first of these positions (h for a
                GRU, h and c for an LSTM). One tensor, not a tuple, so that reentrant checkpointing tracks it.
            keys: [batch, heads, src_len, head_dim] or None (`attention_type="none"`).
            values: [batch, heads, src_len, head_dim] or None.
            encoder_attention_mask: [batch, src_len], bool, True at real source tokens.
            fixed_context: [batch, hidden_size], the context of `attention_type="none"`, else None.
            output_attentions: return the attention weights.

        Returns:
            output: [batch, tgt_len, hidden_size].
            rnn_state: [batch, num_states, hidden_size], the state after the last position.
            weights: [batch, heads, tgt_len, src_len] or None.
        """
        flatten_rnn_weights(self.rnn)
        # torch wants [num_layers=1, batch, hidden] per state: h for a GRU, the pair (h, c) for an LSTM.
        torch_state = rnn_state.transpose(0, 1).contiguous()
        if self.rnn.mode == "LSTM":  # nn.LSTM and its int8 counterpart (translation.quantize_int8) alike
            query, (hidden, cell) = run_rnn(self.rnn, self.dropout(hidden_states), (torch_state[:1], torch_state[1:]))
            new_state = torch.cat([hidden, cell]).transpose(0, 1)
        else:
            query, hidden = run_rnn(self.rnn, self.dropout(hidden_states), torch_state)
            new_state = hidden.transpose(0, 1)

        if self.cross_attention is None:
            context, weights = fixed_context.unsqueeze(1).expand_as(query), None
        else:
            context, weights = self.cross_attention(query, keys, values, encoder_attention_mask, output_attentions)
        output = torch.tanh(self.attention_combine(torch.cat([query, context], dim=-1)))
        if self.use_residual:
            output = hidden_states + output
        return output, new_state, weights


class Seq2SeqAttentionPreTrainedModel(PreTrainedModel):
    config: Seq2SeqAttentionConfig
    config_class = Seq2SeqAttentionConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    # "sdpa" is honoured by the dot-product alignment functions; output_attentions always takes the eager path.
    _supports_sdpa = True
    # A recurrent state cannot be cropped, so assisted generation (which rolls the cache back) does not apply.
    _is_stateful = True
    _no_split_modules = [
        "Seq2SeqAttentionEncoderLayer",
        "Seq2SeqAttentionDecoderLayer",
        "Seq2SeqAttentionSelfAttentionLayer",
    ]

    def __init__(self, config: Seq2SeqAttentionConfig, *inputs, **kwargs):
        config.check_architecture()
        super().__init__(config, *inputs, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, which also loads checkpoints in the older encoder layout
        (`LEGACY_KEY_MAPPING`); the loaded model saves in today's layout.

        A checkpoint's `weights_manifest.json` (written by `save_pretrained`) is checked first: a `config.json`
        edited to another architecture, an override (`attention_type=...`, `config=...`) that changes one, or a
        weights file whose bytes changed since saving is refused with an error naming the field or file. Without a
        manifest, a model whose `attention_type` differs from the weights' is still refused: transformers would only
        report the other type's weights as unexpected, and the model would translate garbage.
        """
        path = pretrained_model_name_or_path
        hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
        manifest, manifest_path = (None, None) if path is None else read_manifest(path, **hub_kwargs)
        if manifest is not None:
            _check_against_manifest(cls, path, kwargs, hub_kwargs, manifest, manifest_path)
            check_weights(path, manifest, manifest_path, **hub_kwargs)
        elif path is not None and ("attention_type" in kwargs or isinstance(kwargs.get("config"), PreTrainedConfig)):
            saved = cls.config_class.from_pretrained(path, **hub_kwargs).attention_type
            requested = kwargs.get("attention_type", getattr(kwargs.get("config"), "attention_type", saved))
            if requested != saved:
                raise ValueError(
                    f"{path} was trained with attention_type={saved!r}; it cannot be loaded "
                    f"as attention_type={requested!r} (the weights belong to the alignment function)."
                )
        kwargs["key_mapping"] = {**LEGACY_KEY_MAPPING, **(kwargs.get("key_mapping") or {})}
        output_loading_info = kwargs.pop("output_loading_info", False)
        try:
            model, loading_info = super().from_pretrained(path, *model_args, output_loading_info=True, **kwargs)
        except SafetensorError as error:
            raise OSError(
                f"{_unreadable_weights_file(path)} is not a readable safetensors file "
                f"({error}): it is truncated or corrupt; save or download the checkpoint again."
            ) from error
        if manifest is not None:
            check_architecture(manifest, manifest_path, model.config.architecture(), f"the config of {path} as loaded")
        weights_type = _attention_type_of_weights(loading_info)
        if weights_type is not None:
            raise ValueError(
                f"The weights of {path} are those of attention_type={weights_type}, but "
                f"its config asks for attention_type={model.config.attention_type!r}: set config.json's "
                "attention_type back to the type the checkpoint was trained with."
            )
        # transformers keeps the renaming to undo it in save_pretrained; that would write the old names back.
        model._weight_conversions = None
        return (model, loading_info) if output_loading_info else model

    def save_pretrained(
        self, save_directory, *args, is_main_process: bool = True, push_to_hub: bool = False, **kwargs
    ):
        """`PreTrainedModel.save_pretrained`, then `weights_manifest.json` beside the weights: the architecture they
        belong to and their checksums, which `from_pretrained` checks. With `push_to_hub=True` the upload is
        `push_to_hub`'s, which saves through this method too, so the manifest goes with the weights."""
        super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        if is_main_process:
            write_manifest(save_directory, self.config.architecture())
        if push_to_hub:
            upload_keys = ("commit_message", "token", "create_pr", "private", "revision")
            repo_id = kwargs.get("repo_id", Path(save_directory).name)
            self.push_to_hub(repo_id, **{key: kwargs[key] for key in upload_keys if key in kwargs})

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, (nn.GRU, nn.LSTM)):
            # PyTorch's own RNN init, U(-1/sqrt(hidden), 1/sqrt(hidden)), which these recurrences are tuned for.
            bound = module.hidden_size**-0.5
            for parameter in module.parameters():
                init.uniform_(parameter, -bound, bound)
        elif isinstance(module, MultiHeadAttention):
            if module.attention_type == "bahdanau":
                init.normal_(module.score_vector, mean=0.0, std=self.config.initializer_range)
            if module.attention_type == "general":
                # Start "general" as "dot": W_a = I in every head.
                eye = torch.eye(module.head_dim, dtype=module.bilinear.dtype, device=module.bilinear.device)
                init.copy_(module.bilinear, eye.expand_as(module.bilinear))


class Seq2SeqAttentionEncoder(nn.Module):
    """The encoder: `config.encoder_layer_types` bidirectional RNN and self-attention layers, bottom to top. It owns
    the token embeddings, which the decoder and output layer share.

    An RNN reads word order; self-attention alone does not (permuting the source permutes its outputs). So when the
    first layer is a self-attention layer, sinusoidal positions are added to the embeddings (`add_positions`); a
    self-attention layer above an RNN layer gets its order from the RNN. A stack whose top layer is self-attention
    ends with a layer norm, as pre-norm stacks do.
    """

    def __init__(self, config: Seq2SeqAttentionConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.layers = nn.ModuleList(
            [
                Seq2SeqAttentionEncoderLayer(config, layer_idx)
                if layer_type == "rnn"
                else Seq2SeqAttentionSelfAttentionLayer(config, layer_idx)
                for layer_idx, layer_type in enumerate(config.encoder_layer_types)
            ]
        )
        self.adds_positions = config.encoder_layer_types[0] == "self_attention"
        self.final_layer_norm = (
            nn.LayerNorm(config.hidden_size) if config.encoder_layer_types[-1] == "self_attention" else None
        )

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutput | tuple:
        """
        Args:
            input_ids: [batch, src_len] source token ids.
            attention_mask: [batch, src_len], 1 at real tokens, 0 at padding (left, right, or anywhere).
            inputs_embeds: [batch, src_len, hidden_size], instead of `input_ids`.
            output_attentions: return the self-attention weights (None when the encoder has no self-attention layer).
            output_hidden_states: also return the embeddings and every layer's output.

        Returns:
            `BaseModelOutput` with `last_hidden_state` [batch, src_len, hidden_size] (zeros at padding) and, when
            requested, `hidden_states`: `num_hidden_layers + 1` tensors [batch, src_len, hidden_size] (the
            embeddings, then each layer's output; the last one after the final layer norm), and `attentions`: one
            [batch, heads, src_len, src_len] tensor per self-attention layer, bottom to top (entry k is the k-th
            `"self_attention"` of `config.encoder_layer_types`; RNN layers have none). Padded keys get exactly 0,
            and the rows of padded queries are all zeros.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_attentions = output_attentions and "self_attention" in self.config.encoder_layer_types
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds to the encoder.")
        if inputs_embeds is None:
            _check_token_ids("input_ids", input_ids, self.config.vocab_size)
            inputs_embeds = self.embed_tokens(input_ids)
        elif inputs_embeds.dim() != 3 or 0 in inputs_embeds.shape[:2]:
            raise ValueError(
                f"inputs_embeds has shape {tuple(inputs_embeds.shape)}; expected [batch, src_len, hidden_size] with "
                "at least one sequence of at least one position."
            )
        inputs_embeds = drop_words(inputs_embeds, self.config.word_dropout, self.training)
        batch_size, src_len, hidden_size = inputs_embeds.shape
        if attention_mask is None:
            mask = torch.ones(batch_size, src_len, dtype=torch.bool, device=inputs_embeds.device)
        else:
            source_name = "input_ids" if input_ids is not None else "inputs_embeds"
            _check_mask("attention_mask", attention_mask, source_name, inputs_embeds.shape[:2])
            mask = attention_mask.bool()

        if not is_tracing() and bool(mask.all()):
            # No padding anywhere: no gathering (the general path below gives the same result; traced code takes it).
            reverse_positions, hidden_states, gathered_mask = None, inputs_embeds, mask

            def to_original_positions(states: torch.Tensor) -> torch.Tensor:
                return states

            def weights_to_original_positions(weights: torch.Tensor) -> torch.Tensor:
                return weights

        else:
            # Gather real tokens to the front of each row (stable, so their order is kept): the forward direction then
            # reads them before any padding, and the backward one reads them reversed (see the encoder layer).
            order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
            restore = torch.argsort(order, dim=1)
            lengths = mask.sum(dim=1, keepdim=True)
            positions = torch.arange(src_len, device=mask.device).expand(batch_size, -1)
            reverse_positions = torch.where(positions < lengths, lengths - 1 - positions, positions)
            gather_index = order.unsqueeze(-1).expand(-1, -1, hidden_size)
            restore_index = restore.unsqueeze(-1).expand(-1, -1, hidden_size)
            position_mask = mask.unsqueeze(-1).to(inputs_embeds.dtype)

            def to_original_positions(states: torch.Tensor) -> torch.Tensor:
                return states.gather(1, restore_index) * position_mask

            def weights_to_original_positions(weights: torch.Tensor) -> torch.Tensor:
                heads = weights.shape[1]
                rows = restore[:, None, :, None].expand(-1, heads, -1, src_len)
                weights = weights.gather(2, rows).gather(3, restore[:, None, None, :].expand(-1, heads, src_len, -1))
                return weights * mask[:, None, :, None].to(weights.dtype)

            hidden_states = inputs_embeds.gather(1, gather_index)
            gathered_mask = positions < lengths
        if self.adds_positions:
            # Added after gathering, so that a row's real tokens are at positions 0.. however it is padded.
            hidden_states = F.dropout(add_positions(hidden_states), self.config.dropout, self.training)
        all_hidden_states = (inputs_embeds,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer_idx, layer in enumerate(self.layers):
            if isinstance(layer, Seq2SeqAttentionSelfAttentionLayer):
                hidden_states, weights, _ = layer(hidden_states, gathered_mask, output_attentions)
                if output_attentions:
                    all_attentions += (weights_to_original_positions(weights),)
            else:
                hidden_states = layer(hidden_states, reverse_positions)
            if self.final_layer_norm is not None and layer_idx == len(self.layers) - 1:
                hidden_states = self.final_layer_norm(hidden_states)
            if output_hidden_states:
                all_hidden_states += (to_original_positions(hidden_states),)
        last_hidden_state = all_hidden_states[-1] if output_hidden_states else to_original_positions(hidden_states)

        if not return_dict:
            values = (last_hidden_state, all_hidden_states, all_attentions)
            return tuple(value for value in values if value is not None)
        return BaseModelOutput(
            last_hidden_state=last_hidden_state, hidden_states=all_hidden_states, attentions=all_attentions
        )


class Seq2SeqAttentionDecoder(nn.Module):
    """The decoder: `config.decoder_layer_types` RNN layers (each followed by cross attention, see the module
    docstring) and self-attention layers (causal self-attention, cross attention, feed-forward), bottom to top.

    As in the encoder, sinusoidal positions are added to the embeddings when the first layer is self-attention,
    starting at the position after the tokens already in the cache, and a stack whose top layer is self-attention ends
    with a layer norm.
    """

    def __init__(self, config: Seq2SeqAttentionConfig):
        super().__init__()
        self.config = config
        self.num_states = 2 if config.rnn_type == "lstm" else 1
        self.rnn_layer_indices = [idx for idx, kind in enumerate(config.decoder_layer_types) if kind == "rnn"]
        # s_0 = tanh(W_s mean_j h_j) for every RNN layer at once; a self-attention layer has no state to start.
        self.bridge = (
            nn.Linear(config.hidden_size, len(self.rnn_layer_indices) * config.hidden_size)
            if self.rnn_layer_indices
            else None
        )
        self.layers = nn.ModuleList(
            [
                Seq2SeqAttentionDecoderLayer(config, layer_idx)
                if layer_type == "rnn"
                else Seq2SeqAttentionSelfAttentionLayer(config, layer_idx, is_decoder=True)
                for layer_idx, layer_type in enumerate(config.decoder_layer_types)
            ]
        )
        self.has_self_attention = "self_attention" in config.decoder_layer_types
        self.adds_positions = config.decoder_layer_types[0] == "self_attention"
        self.final_layer_norm = (
            nn.LayerNorm(config.hidden_size) if config.decoder_layer_types[-1] == "self_attention" else None
        )

    def initial_states(self, source_summary: torch.Tensor) -> list[torch.Tensor | None]:
        """
        Args:
            source_summary: [batch, hidden_size], the mean of the encoder states.

        Returns:
            one entry per layer: for an RNN layer its state [batch, num_states, hidden_size] (h for a GRU; h and a
            zero cell for an LSTM), None for a self-attention layer.
        """
        states: list[torch.Tensor | None] = [None] * len(self.layers)
        if self.bridge is None:
            return states
        batch_size, hidden_size = source_summary.shape
        hidden = torch.tanh(self.bridge(source_summary)).view(batch_size, -1, 1, hidden_size)
        if self.num_states == 2:
            hidden = torch.cat([hidden, torch.zeros_like(hidden)], dim=2)
        for layer_idx, state in zip(self.rnn_layer_indices, hidden.unbind(dim=1), strict=True):
            states[layer_idx] = state
        return states

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        past_key_values: Seq2SeqAttentionCache | None = None,
        use_cache: bool = False,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, Seq2SeqAttentionCache | None, tuple | None, tuple | None, tuple | None]:
        """
        Args:
            inputs_embeds: [batch, tgt_len, hidden_size], embeddings of the decoder inputs (the shifted target), only
                the new tokens when `past_key_values` holds earlier ones.
            encoder_hidden_states: [batch, src_len, hidden_size].
            encoder_attention_mask: [batch, src_len], bool, True at real source tokens.
            past_key_values: the cache of earlier steps, or a new empty one to fill, or None.
            use_cache: write the states after these tokens into `past_key_values`.

        Returns:
            last_hidden_state [batch, tgt_len, hidden_size]; the cache; the hidden states (`num_hidden_layers + 1`
            tensors [batch, tgt_len, hidden_size]) or None; the self-attentions (one [batch, heads, tgt_len,
            past + tgt_len] tensor per self-attention layer, bottom to top) or None; the cross attentions
            (`num_hidden_layers` tensors [batch, heads, tgt_len, src_len]) or None.
        """
        continuing = past_key_values is not None and past_key_values.get_seq_length() > 0
        num_past = past_key_values.get_seq_length() if continuing else 0
        is_attentive = self.config.attention_type != "none"
        fixed_context = None
        if not continuing or not is_attentive:
            source_summary = _masked_mean(encoder_hidden_states, encoder_attention_mask)
            fixed_context = None if is_attentive else source_summary

        if continuing:
            states = [layer_cache.rnn_state for layer_cache in past_key_values.layers]
            memories = [(layer_cache.keys, layer_cache.values) for layer_cache in past_key_values.layers]
        else:
            states = self.initial_states(source_summary)
            memories = [
                layer.cross_attention.project_memory(encoder_hidden_states) if is_attentive else (None, None)
                for layer in self.layers
            ]
            if use_cache:
                for layer_cache, (keys, values) in zip(past_key_values.layers, memories, strict=True):
                    layer_cache.update(keys, values)

        batch_size, tgt_len, _ = inputs_embeds.shape
        causal_mask = None
        if self.has_self_attention:
            # Position num_past + i sees the cached positions and the new ones up to itself.
            key_positions = torch.arange(num_past + tgt_len, device=inputs_embeds.device)
            query_positions = torch.arange(num_past, num_past + tgt_len, device=inputs_embeds.device)
            causal_mask = (key_positions[None, :] <= query_positions[:, None]).expand(batch_size, -1, -1)
        hidden_states = inputs_embeds
        if self.adds_positions:
            hidden_states = F.dropout(add_positions(inputs_embeds, num_past), self.config.dropout, self.training)
        all_hidden_states = (inputs_embeds,) if output_hidden_states else None
        all_self_attentions = () if output_attentions and self.has_self_attention else None
        all_cross_attentions = () if output_attentions and is_attentive else None
        for layer_idx, layer in enumerate(self.layers):
            keys, values = memories[layer_idx]
            layer_cache = past_key_values.layers[layer_idx] if past_key_values is not None else None
            if isinstance(layer, Seq2SeqAttentionSelfAttentionLayer):
                hidden_states, self_weights, weights = layer(
                    hidden_states,
                    causal_mask,
                    output_attentions,
                    keys,
                    values,
                    encoder_attention_mask,
                    layer_cache,
                    use_cache,
                )
                if all_self_attentions is not None:
                    all_self_attentions += (self_weights,)
            else:
                hidden_states, new_state, weights = layer(
                    hidden_states,
                    states[layer_idx],
                    keys,
                    values,
                    encoder_attention_mask,
                    fixed_context,
                    output_attentions=output_attentions,
                )
                if use_cache:
                    layer_cache.update_rnn_state(new_state, tgt_len)
            if self.final_layer_norm is not None and layer_idx == len(self.layers) - 1:
                hidden_states = self.final_layer_norm(hidden_states)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if all_cross_attentions is not None:
                all_cross_attentions += (weights,)
        new_cache = past_key_values if use_cache else None
        return hidden_states, new_cache, all_hidden_states, all_self_attentions, all_cross_attentions


class Seq2SeqAttentionModel(Seq2SeqAttentionPreTrainedModel):
    """The bare encoder-decoder, outputting the decoder's top-layer states (no language-model head)."""

    def __init__(self, config: Seq2SeqAttentionConfig):
        super().__init__(config)
        self.encoder = Seq2SeqAttentionEncoder(config)
        self.decoder = Seq2SeqAttentionDecoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.encoder.embed_tokens = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        past_key_values: Seq2SeqAttentionCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        cache: Seq2SeqAttentionCache | None = None,
    ) -> Seq2SeqModelOutput | tuple:
        """
        Args:
            input_ids: [batch, src_len] source token ids.
            attention_mask: [batch, src_len], 1 at real source tokens, 0 at padding.
            decoder_input_ids: [batch, tgt_len] decoder inputs (the target shifted right), only the new tokens when
                `past_key_values` holds earlier ones.
            decoder_attention_mask: [batch, tgt_len] (or [batch, past + tgt_len] while decoding with a cache), 1 at
                real target tokens. Only right padding is accepted: the decoder is causal, so padding after the real
                tokens never reaches their states, while padding before them would (refused with a `ValueError`).
            encoder_outputs: precomputed encoder outputs (`last_hidden_state` [batch, src_len, hidden_size]).
            past_key_values: a [`Seq2SeqAttentionCache`] from an earlier call, to continue decoding.
            inputs_embeds: [batch, src_len, hidden_size], instead of `input_ids`.
            decoder_inputs_embeds: [batch, tgt_len, hidden_size], instead of `decoder_input_ids`.
            use_cache: return a cache to continue from (defaults to `config.use_cache`).
            cache: the same as `past_key_values`, under the name transformers 5.24 and later pass.
            output_attentions: return `cross_attentions`, `num_hidden_layers` tensors [batch, heads, tgt_len, src_len]
                (None for `attention_type="none"`), and `encoder_attentions`, one [batch, heads, src_len, src_len]
                tensor per encoder self-attention layer (None without one), and `decoder_attentions`, one [batch,
                heads, tgt_len, past + tgt_len] tensor per decoder self-attention layer (None without one), causal:
                zero above the diagonal. Entries run bottom to top over the self-attention layers only.
            output_hidden_states: return embeddings and every layer's output for encoder and decoder.
        """
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        )
        use_cache = use_cache if use_cache is not None else config.use_cache
        return_dict = return_dict if return_dict is not None else config.return_dict
        past_key_values = _resolve_cache(past_key_values, cache)

        # The encoder checks the mask against its input; precomputed encoder outputs are checked below.
        encoder_precomputed = encoder_outputs is not None
        if not encoder_precomputed:
            encoder_outputs = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                inputs_embeds=inputs_embeds,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                return_dict=True,
            )
        elif not isinstance(encoder_outputs, BaseModelOutput):
            encoder_outputs = BaseModelOutput(
                last_hidden_state=encoder_outputs[0],
                hidden_states=encoder_outputs[1] if len(encoder_outputs) > 1 else None,
                attentions=encoder_outputs[2] if len(encoder_outputs) > 2 else None,
            )
        encoder_hidden_states = encoder_outputs.last_hidden_state
        if attention_mask is None:
            encoder_attention_mask = torch.ones(
                encoder_hidden_states.shape[:2], dtype=torch.bool, device=encoder_hidden_states.device
            )
        else:
            if encoder_precomputed:
                _check_mask("attention_mask", attention_mask, "encoder_outputs", encoder_hidden_states.shape[:2])
            encoder_attention_mask = attention_mask.bool()

        if (decoder_input_ids is None) == (decoder_inputs_embeds is None):
            raise ValueError("Pass exactly one of decoder_input_ids and decoder_inputs_embeds (or labels).")
        if decoder_inputs_embeds is None:
            _check_token_ids("decoder_input_ids", decoder_input_ids, config.vocab_size)
            decoder_inputs_embeds = self.encoder.embed_tokens(decoder_input_ids)
        decoder_inputs_embeds = drop_words(decoder_inputs_embeds, config.word_dropout, self.training)

        if decoder_inputs_embeds.shape[0] != encoder_hidden_states.shape[0]:
            raise ValueError(
                f"The decoder inputs have batch size {decoder_inputs_embeds.shape[0]} but the source has "
                f"{encoder_hidden_states.shape[0]}."
            )
        if past_key_values is not None and not isinstance(past_key_values, Seq2SeqAttentionCache):
            raise ValueError(
                f"past_key_values is a {type(past_key_values).__name__}; this recurrent model needs the "
                "Seq2SeqAttentionCache it returns (or None)."
            )
        if decoder_attention_mask is not None:
            num_past = past_key_values.get_seq_length() if past_key_values is not None else 0
            _check_decoder_mask(
                decoder_attention_mask, decoder_inputs_embeds.shape[0], num_past, decoder_inputs_embeds.shape[1]
            )
        if use_cache and past_key_values is None:
            past_key_values = Seq2SeqAttentionCache(config.num_hidden_layers)

        last_hidden_state, new_cache, decoder_hidden_states, decoder_attentions, cross_attentions = self.decoder(
            decoder_inputs_embeds,
            encoder_hidden_states,
            encoder_attention_mask,
            past_key_values=past_key_values,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        outputs = Seq2SeqModelOutput(
            last_hidden_state=last_hidden_state,
            **{CACHE_OUTPUT_FIELD: new_cache},
            decoder_hidden_states=decoder_hidden_states,
            decoder_attentions=decoder_attentions,
            cross_attentions=cross_attentions,
            encoder_last_hidden_state=encoder_hidden_states,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )
        return outputs if return_dict else outputs.to_tuple()


class Seq2SeqAttentionForConditionalGeneration(Seq2SeqAttentionPreTrainedModel, GenerationMixin):
    """The encoder-decoder with a language-model head over the shared vocabulary, a loss, and `generate()`."""

    _tied_weights_keys = {"lm_head.weight": "model.encoder.embed_tokens.weight"}
    # `forward` takes no **kwargs (an argument it does not know is an error, not silently dropped); this tells the
    # Trainer that it does take `num_items_in_batch`.
    accepts_loss_kwargs = True

    def __init__(self, config: Seq2SeqAttentionConfig):
        super().__init__(config)
        self.model = Seq2SeqAttentionModel(config)
        self.dropout = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # generate() must not build a DynamicCache of growing keys/values: forward creates the recurrent cache.
        return False

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head = new_embeddings

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def _check_labels(
        self, labels: torch.Tensor, source: torch.Tensor | None, decoder_input_ids: torch.Tensor | None
    ) -> None:
        """
        Args:
            labels: [batch, tgt_len].
            source: [batch, src_len] ids or [batch, src_len, hidden_size] embeddings, or None.
            decoder_input_ids: [batch, tgt_len] or None.
        """
        _check_ids_tensor("labels", labels)
        if source is not None and labels.shape[0] != source.shape[0]:
            raise ValueError(f"labels has batch size {labels.shape[0]} but the source has {source.shape[0]}.")
        if decoder_input_ids is not None and decoder_input_ids.shape != labels.shape:
            raise ValueError(
                f"labels has shape {tuple(labels.shape)} but decoder_input_ids has shape "
                f"{tuple(decoder_input_ids.shape)}: one label is predicted at each decoder position."
            )
        if not _checks_apply():
            return
        invalid = ((labels < 0) & (labels != -100)) | (labels >= self.config.vocab_size)
        if invalid.any():
            bad = labels[invalid][0].item()
            raise ValueError(
                f"labels contains {bad}; labels must be token ids in [0, {self.config.vocab_size - 1}] or -100."
            )

    def generate(self, inputs: torch.Tensor | None = None, generation_config=None, **kwargs):
        """[`GenerationMixin.generate`], with the inputs' values checked once here instead of at every step."""
        source = inputs if inputs is not None else kwargs.get("input_ids")
        if isinstance(source, torch.Tensor) and source.dim() == 2:
            _check_token_ids("input_ids", source, self.config.vocab_size)
        if kwargs.get("decoder_input_ids") is not None:
            _check_token_ids("decoder_input_ids", kwargs["decoder_input_ids"], self.config.vocab_size)
        if kwargs.get("decoder_attention_mask") is not None:
            mask = kwargs["decoder_attention_mask"]
            _check_decoder_mask(mask, mask.shape[0], 0, mask.shape[-1])
        token = _CHECK_VALUES.set(False)
        try:
            return super().generate(inputs, generation_config, **kwargs)
        finally:
            _CHECK_VALUES.reset(token)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        past_key_values: Seq2SeqAttentionCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        cache: Seq2SeqAttentionCache | None = None,
    ) -> Seq2SeqLMOutput | tuple:
        """
        Takes the arguments of [`Seq2SeqAttentionModel.forward`], and:

        Args:
            labels: [batch, tgt_len] target token ids, -100 where no loss is wanted. Without `decoder_input_ids`, the
                decoder inputs are the labels shifted right behind `config.decoder_start_token_id`.
            num_items_in_batch: the number of labelled tokens over the whole (multi-process, accumulated) batch, as
                the Trainer passes it; the summed loss is divided by it, so that token averaging is right across
                processes and accumulation steps. Without it the loss is the mean over this batch's labelled tokens.

        Returns:
            `Seq2SeqLMOutput` with `logits` [batch, tgt_len, vocab_size] and, with labels, the cross-entropy `loss`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if labels is not None:
            self._check_labels(labels, input_ids if input_ids is not None else inputs_embeds, decoder_input_ids)
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)

        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            past_key_values=_resolve_cache(past_key_values, cache),
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.lm_head(self.dropout(outputs.last_hidden_state))

        loss = None
        if labels is not None:
            summed = F.cross_entropy(
                logits.flatten(0, 1).float(), labels.flatten().to(logits.device), ignore_index=-100, reduction="sum"
            )
            if num_items_in_batch is None:
                num_items_in_batch = (labels != -100).sum()
            if isinstance(num_items_in_batch, torch.Tensor):
                num_items_in_batch = num_items_in_batch.to(summed.device)
            # An all -100 batch gives 0, not NaN.
            loss = summed / torch.clamp(torch.as_tensor(num_items_in_batch, device=summed.device), min=1)

        output = Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            **{CACHE_OUTPUT_FIELD: getattr(outputs, CACHE_OUTPUT_FIELD)},
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_attentions=outputs.encoder_attentions,
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "HUB_KWARGS",
    "Seq2SeqAttentionForConditionalGeneration",
    "Seq2SeqAttentionModel",
    "Seq2SeqAttentionPreTrainedModel",
    "cpu_has_bf16_kernels",
    "drop_words",
    "shift_tokens_right",
]
