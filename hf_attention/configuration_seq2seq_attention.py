"""Configuration of the attentional RNN encoder-decoder (Bahdanau et al. 2015) with a swappable attention function."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

ATTENTION_TYPES = ("bahdanau", "scaled_dot", "dot", "general", "none")
RNN_TYPES = ("gru", "lstm")
LAYER_TYPES = ("rnn", "self_attention")
SELF_ATTENTION_TYPES = tuple(name for name in ATTENTION_TYPES if name != "none")
# The fields that decide what the weights compute: a checkpoint's weights belong to these values, and loading them
# under others (several change no weight's shape) gives a model that runs and translates garbage. Dropout, chunking
# and the choice of kernels are left out: they change training or speed, not the function.
ARCHITECTURE_FIELDS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "attention_type",
    "self_attention_type",
    "rnn_type",
    "encoder_layer_types",
    "decoder_layer_types",
    "intermediate_size",
    "tie_word_embeddings",
    "is_encoder_decoder",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "decoder_start_token_id",
)


@strict
class Seq2SeqAttentionConfig(PreTrainedConfig):
    r"""
    Configuration of [`Seq2SeqAttentionModel`] and [`Seq2SeqAttentionForConditionalGeneration`].

    Args:
        vocab_size (`int`, defaults to 8000): size of the joint source/target vocabulary (one embedding table).
        hidden_size (`int`, defaults to 256): width of the embeddings, of every RNN layer's output and of the
            attention. The bidirectional encoder gives each direction `hidden_size // 2` units, so it must be even.
        num_hidden_layers (`int`, defaults to 2): RNN layers in the encoder and, separately, in the decoder.
        num_attention_heads (`int`, defaults to 4): heads of the cross attention; must divide `hidden_size`.
        attention_type (`str`, defaults to `"bahdanau"`): the alignment function scoring a decoder query against
            every encoder key, one of `"bahdanau"` (additive, v^T tanh(W q + U k)), `"scaled_dot"` (q.k / sqrt(d)),
            `"dot"` (q.k), `"general"` (q^T W k, Luong et al. 2015) or `"none"` (no attention: every target position
            sees one fixed context vector, the Cho et al. 2014 encoder-decoder).
        encoder_layer_types (`list[str]`, *optional*): the kind of each encoder layer, bottom to top: `"rnn"` (a
            bidirectional RNN layer) or `"self_attention"` (a pre-norm block of multi-head self-attention over the
            source and a position-wise feed-forward network). Defaults to `num_hidden_layers` RNN layers (the model
            of Bahdanau et al.); a list must have `num_hidden_layers` entries. All `"self_attention"` gives a
            Transformer encoder, self-attention layers under RNN layers a hybrid (Chen et al. 2018).
        decoder_layer_types (`list[str]`, *optional*): the same for the decoder: `"rnn"` (a unidirectional RNN
            layer followed by cross attention) or `"self_attention"` (a pre-norm block of causal multi-head
            self-attention over the target so far, cross attention over the source, and a feed-forward network).
            All `"self_attention"` on both sides gives a Transformer (Vaswani et al. 2017); decoder self-attention
            layers need a cross attention, so not `attention_type="none"`.
        self_attention_type (`str`, *optional*): the alignment function of the self-attention layers, any of
            `attention_type`'s except `"none"`; defaults to `attention_type`.
        intermediate_size (`int`, *optional*): width of the self-attention layers' feed-forward network; defaults to
            `4 * hidden_size`.
        rnn_type (`str`, defaults to `"lstm"`): `"lstm"` or `"gru"`, for encoder and decoder. LSTM is the default
            because PyTorch runs it as one fused oneDNN kernel per layer on CPUs (GRU steps through a per-position
            loop there).
        dropout (`float`, defaults to 0.2): dropout on embeddings and between layers.
        attention_dropout (`float`, defaults to 0.0): dropout on the attention weights.
        word_dropout (`float`, defaults to 0.0): in training, the probability of dropping a whole source or
            decoder-input token (its embedding set to zero, the kept ones scaled by 1 / (1 - p)), so that the model
            learns to predict from context rather than from any single word (Gal & Ghahramani 2016; a large gain on
            small corpora in Sennrich & Zhang 2019).
        attention_chunk_size (`int`, defaults to 2**24): upper bound on the number of elements of the additive
            score tensor [batch, heads, tgt_chunk, src_len, head_dim] that `"bahdanau"` materialises at once; longer
            targets are scored in chunks of positions.
        compile_additive_attention (`bool`, *optional*): how `"bahdanau"` computes its scores. `None` (the default)
            chooses per call: the fused kernels of `fused_additive_attention.py` (`torch.compile`d; tanh(q_i + k_j)
            computed in registers, forward and backward, never stored) when the scores are large enough to gain
            from them, the eager path for tiny ones (a generation step of a short batch). `True` always fuses,
            `False` always runs eagerly (chunked). Same values within float32 rounding. The kernels need a C++
            compiler on CPUs (Triton on GPUs); where they do not compile, the eager path runs after one warning.
            Compiled kernels are cached on disk, so the compile cost is paid once per machine (docs/benchmark.md).
        initializer_range (`float`, defaults to 0.1): standard deviation of the normal init of linear layers and
            embeddings.
        tie_word_embeddings (`bool`, defaults to `True`): share the output projection with the embedding table.

    Example:

    ```python
    >>> from hf_attention import Seq2SeqAttentionConfig
    >>> from transformers import AutoModelForSeq2SeqLM
    >>> config = Seq2SeqAttentionConfig(vocab_size=8000, attention_type="scaled_dot")
    >>> model = AutoModelForSeq2SeqLM.from_config(config)
    ```
    """

    model_type = "seq2seq_attention"
    keys_to_ignore_at_inference = ["past_key_values"]

    vocab_size: int = 8000
    hidden_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    attention_type: str = "bahdanau"
    rnn_type: str = "lstm"
    encoder_layer_types: list[str] | None = None
    decoder_layer_types: list[str] | None = None
    self_attention_type: str | None = None
    intermediate_size: int | None = None
    dropout: float | int = 0.2
    attention_dropout: float | int = 0.0
    word_dropout: float | int = 0.0
    attention_chunk_size: int = 2**24
    compile_additive_attention: bool | None = None
    initializer_range: float = 0.1
    use_cache: bool = True
    is_encoder_decoder: bool = True
    tie_word_embeddings: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    decoder_start_token_id: int | None = 1

    def __post_init__(self, **kwargs):
        # Filled in here so that the saved config names every layer (configs saved before these fields load as RNNs).
        for name in ("encoder_layer_types", "decoder_layer_types"):
            if getattr(self, name) is None:
                setattr(self, name, ["rnn"] * self.num_hidden_layers)
        if self.self_attention_type is None:
            self.self_attention_type = self.attention_type
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size
        self.check_architecture()
        super().__post_init__(**kwargs)

    @property
    def custom_pipelines(self) -> dict:
        """Where `pipeline("translation")` finds this model's pipeline without the package: the copy of
        `pipeline_seq2seq_attention.py` saved with the checkpoint (needs `trust_remote_code=True`).

        Empty where the package is imported: its registered pipeline then serves the task without remote code.
        """
        from transformers.pipelines import PIPELINE_REGISTRY  # not at import: loading the pipelines is slow

        if "translation" in PIPELINE_REGISTRY.get_supported_tasks():
            return {}
        return {
            "translation": {
                "impl": "pipeline_seq2seq_attention.TranslationPipeline",
                "pt": ["AutoModelForSeq2SeqLM"],
                "type": "text",
            }
        }

    @custom_pipelines.setter
    def custom_pipelines(self, value):
        # Fixed by the class: ignore the value in older config files and the one Pipeline.save_pretrained sets.
        pass

    def check_architecture(self):
        """Raise a `ValueError` naming the value when the model cannot be built from this config.

        Run at creation and again by the model's `__init__`, so that attributes changed after creation are checked.
        """
        if self.attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type={self.attention_type!r} is not one of {', '.join(ATTENTION_TYPES)}.")
        if self.rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type={self.rnn_type!r} is not one of {', '.join(RNN_TYPES)}.")
        for name in ("encoder_layer_types", "decoder_layer_types"):
            layer_types = getattr(self, name)
            if len(layer_types) != self.num_hidden_layers:
                raise ValueError(
                    f"{name}={layer_types} has {len(layer_types)} entries; it needs one per layer, "
                    f"num_hidden_layers={self.num_hidden_layers}."
                )
            for layer_type in layer_types:
                if layer_type not in LAYER_TYPES:
                    raise ValueError(f"{name} holds {layer_type!r}, which is not one of {', '.join(LAYER_TYPES)}.")
        if "self_attention" in self.decoder_layer_types and self.attention_type == "none":
            raise ValueError(
                f"decoder_layer_types={self.decoder_layer_types} with attention_type='none': a decoder "
                "self-attention layer reads the source through its cross attention, so it needs an alignment "
                f"function ({', '.join(SELF_ATTENTION_TYPES)}); the fixed-context model has RNN decoder layers only."
            )
        uses_self_attention = "self_attention" in self.encoder_layer_types + self.decoder_layer_types
        if uses_self_attention and self.self_attention_type not in SELF_ATTENTION_TYPES:
            raise ValueError(
                f"self_attention_type={self.self_attention_type!r} is not one of {', '.join(SELF_ATTENTION_TYPES)}"
                " (the self-attention layers need an alignment function; with attention_type='none' name one)."
            )
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "attention_chunk_size",
            "intermediate_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be a positive integer.")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads={self.num_attention_heads}."
            )
        if self.hidden_size % 2 != 0:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be even: the bidirectional encoder gives each direction "
                "hidden_size // 2 units."
            )
        if self.initializer_range < 0:
            raise ValueError(f"initializer_range={self.initializer_range} must be >= 0 (a standard deviation).")
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id"):
            token_id = getattr(self, name)
            if token_id is not None and not 0 <= token_id < self.vocab_size:
                raise ValueError(f"{name}={token_id} is outside the vocabulary [0, {self.vocab_size - 1}].")
        eos_ids = self.eos_token_id if isinstance(self.eos_token_id, list) else [self.eos_token_id]
        for token_id in eos_ids:
            if token_id is not None and not 0 <= token_id < self.vocab_size:
                raise ValueError(f"eos_token_id={token_id} is outside the vocabulary [0, {self.vocab_size - 1}].")
        for name in ("dropout", "attention_dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be in [0, 1).")

    def architecture(self) -> dict:
        """The values of `ARCHITECTURE_FIELDS`, recorded beside a checkpoint's weights (`weights_manifest.py`)."""
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


__all__ = [
    "ARCHITECTURE_FIELDS",
    "ATTENTION_TYPES",
    "LAYER_TYPES",
    "RNN_TYPES",
    "SELF_ATTENTION_TYPES",
    "Seq2SeqAttentionConfig",
]
