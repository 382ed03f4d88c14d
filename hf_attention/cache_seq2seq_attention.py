"""The decoding cache of the attentional encoder-decoder: a transformers `Cache` that `generate` reorders for beam
search, holding per decoder layer what that layer needs to continue.

A recurrent decoder layer needs only its current state: the RNN state after the tokens seen so far (one tensor for a
GRU, hidden and cell for an LSTM), of a fixed size, so the cost of one decoding step does not grow with the number of
tokens already generated. A self-attention decoder layer needs the keys and values of every past target token, which
grow by one position per step (held in transformers' own `DynamicLayer`). Every layer also keeps the encoder keys and
values its cross attention projected once from the source: they depend only on the source, so they are computed at
the first step and reused at every step and by every beam.
"""

import torch
from transformers.cache_utils import Cache, CacheLayerMixin, DynamicLayer


class Seq2SeqAttentionLayerCache(CacheLayerMixin):
    """State of one decoder layer.

    Attributes:
        keys: [batch, heads, src_len, head_dim] or None, the projected encoder keys (None for `attention_type="none"`).
        values: [batch, heads, src_len, head_dim] or None, the projected encoder values.
        rnn_state: [batch, num_states, hidden_size], h for a GRU and h, c for an LSTM; None before the first step and
            for a self-attention layer.
        self_attention: a `DynamicLayer` with the self-attention keys and values of the past target tokens, each
            [batch, heads, num_tokens, head_dim]; None for an RNN layer.
        num_tokens: how many target tokens the layer has consumed.
        device: the device the state is computed on, where `prefetch` moves it back after `offload`.
    """

    is_croppable = False  # a recurrent state cannot be rolled back to an earlier position (nor a mixed stack)
    supports_early_init = False

    def __init__(self):
        super().__init__()
        self.rnn_state: torch.Tensor | None = None
        self.self_attention: DynamicLayer | None = None
        self.num_tokens = 0
        self.device: torch.device | None = None  # where the model computes the state (kept across `offload`)

    def lazy_initialization(self, key_states: torch.Tensor | None, value_states: torch.Tensor | None) -> None:
        self.keys, self.values = key_states, value_states
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor | None, value_states: torch.Tensor | None, *args, **kwargs
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Store the source's projected keys/values the first time; later calls return the stored ones unchanged."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        return self.keys, self.values

    def update_rnn_state(self, rnn_state: torch.Tensor, num_new_tokens: int) -> None:
        """Replace the RNN state by the one after `num_new_tokens` more target tokens.

        Args:
            rnn_state: [batch, num_states, hidden_size].
            num_new_tokens: tokens consumed since the last update.
        """
        self.rnn_state = rnn_state
        self.device = rnn_state.device
        self.num_tokens += num_new_tokens

    def update_self_attention(
        self, key_states: torch.Tensor, value_states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the self-attention keys and values of new target tokens; return those of all tokens so far.

        Args:
            key_states: [batch, heads, num_new_tokens, head_dim].
            value_states: [batch, heads, num_new_tokens, head_dim].

        Returns:
            keys, values: [batch, heads, num_tokens, head_dim], oldest token first.
        """
        if self.self_attention is None:
            self.self_attention = DynamicLayer()
        self.device = key_states.device
        self.num_tokens += key_states.shape[-2]
        return self.self_attention.update(key_states, value_states)

    def get_seq_length(self) -> int:
        return self.num_tokens

    def get_max_length(self) -> int:
        return -1

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        source_length = 0 if self.keys is None else self.keys.shape[-2]
        return source_length, 0

    def _map_batch(self, fn) -> None:
        # Every tensor here has the batch on dim 0, so beam reordering, expansion and selection are one function each.
        if self.keys is not None:
            self.keys, self.values = fn(self.keys), fn(self.values)
        if self.rnn_state is not None:
            self.rnn_state = fn(self.rnn_state)
        if self.self_attention is not None:
            self.self_attention.keys = fn(self.self_attention.keys)
            self.self_attention.values = fn(self.self_attention.values)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self._map_batch(lambda tensor: tensor.index_select(0, beam_idx.to(tensor.device)))

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._map_batch(lambda tensor: tensor.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._map_batch(lambda tensor: tensor[indices])

    def offload(self):
        """Move the state to the CPU; `prefetch` brings it back to `self.device`."""
        self._map_batch(lambda tensor: tensor.to("cpu", non_blocking=True))

    def prefetch(self):
        """Move an offloaded state back to the device it was on before `offload`."""
        if self.device is not None:
            self._map_batch(lambda tensor: tensor.to(self.device, non_blocking=True))

    def reset(self) -> None:
        self.keys = self.values = self.rnn_state = self.self_attention = None
        self.num_tokens = 0
        self.is_initialized = False

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError(
            "A recurrent decoder state cannot be cropped to an earlier position: re-run the decoder instead."
        )

    @property
    def batch_size(self) -> int:
        if self.rnn_state is not None:
            return self.rnn_state.shape[0]
        if self.self_attention is not None:
            return self.self_attention.keys.shape[0]
        return -1


class Seq2SeqAttentionCache(Cache):
    """Decoding cache of [`Seq2SeqAttentionForConditionalGeneration`]: one [`Seq2SeqAttentionLayerCache`] per decoder
    layer, RNN or self-attention. `get_seq_length()` is the number of target tokens consumed so far."""

    def __init__(self, num_hidden_layers: int):
        super().__init__(layers=[Seq2SeqAttentionLayerCache() for _ in range(num_hidden_layers)])

    @property
    def is_compileable(self) -> bool:
        return False

    @property
    def batch_size(self) -> int:
        return self.layers[0].batch_size


__all__ = ["Seq2SeqAttentionCache", "Seq2SeqAttentionLayerCache"]
