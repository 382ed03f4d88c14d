"""Translating with a trained checkpoint, and reading off the alignment (cross-attention weights) of a translation.

Works on any `AutoModelForSeq2SeqLM` + tokenizer pair; the helpers only batch, generate and decode.
"""

import logging
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .beam_search import beam_search_dropping_finished
from .plotting import plot_attention

logger = logging.getLogger(__name__)

# Generation settings that count something: 0 or less fails deep inside `generate` (or, for `num_beams`, not at all).
POSITIVE_GENERATION_SETTINGS = ("num_beams", "max_new_tokens", "num_return_sequences")


def batched(items: Iterable, batch_size: int) -> Iterator[list]:
    """Lists of `batch_size` consecutive items (the last may be shorter)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def sentence_list(sentences, name: str = "sentences") -> list[str]:
    """`sentences` as a list, refusing a bare string (iterating it would translate each character) and non-strings.

    Raises:
        TypeError: naming `name`, what it got and what is allowed.
    """
    if isinstance(sentences, str | bytes):
        raise TypeError(
            f"{name} is one {type(sentences).__name__} ({sentences[:40]!r}); pass a list of sentences, "
            f"e.g. [{sentences[:40]!r}]"
        )
    sentences = list(sentences)
    for index, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise TypeError(f"{name}[{index}] is {type(sentence).__name__} ({sentence!r:.40}); expected a str")
    return sentences


def check_generation_settings(generate_kwargs: dict) -> None:
    """Raise a ValueError naming the first of `POSITIVE_GENERATION_SETTINGS` in `generate_kwargs` that is not a whole
    number >= 1; None (the model's generation config decides) is allowed."""
    for name in POSITIVE_GENERATION_SETTINGS:
        value = generate_kwargs.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}={value!r}: expected a whole number >= 1 (or None for the generation config's)")


def warn_about_truncation(tokenizer, sentences: list[str], indices: Iterable[int]) -> None:
    """Log a warning for each of `sentences[indices]` longer than `tokenizer.model_max_length` tokens, which the
    tokenizer will cut: a long line would otherwise come back as the translation of its beginning only."""
    limit = tokenizer.model_max_length
    indices = list(indices)
    if not indices:  # the tokenizer fails on an empty batch
        return
    # verbose=False: transformers' own warning names no sentence and is given once per tokenizer.
    lengths = [len(ids) for ids in tokenizer([sentences[index] for index in indices], verbose=False)["input_ids"]]
    for index, length in zip(indices, lengths, strict=True):
        if length > limit:
            logger.warning(
                "sentence %d has %d tokens, more than the tokenizer's model_max_length of %d: only its first %d "
                "tokens are translated",
                index,
                length,
                limit,
                limit,
            )


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` for CPU inference with int8 weights in every `nn.Linear`, `nn.LSTM` and `nn.GRU` (dynamic
    quantization: activations are quantized on the fly, embeddings stay float); `model` itself is left unchanged.

    The copy translates, aligns and scores like the model it came from, only on a CPU, without gradients and outside
    autocast (its kernels take float32 activations, not bf16); it cannot be saved with `save_pretrained` (keep the
    float checkpoint and quantize after loading). docs/benchmark.md gives its speed and BLEU against the float model.

    Raises:
        ValueError: `model` is not on the CPU.
    """
    if model.device.type != "cpu":
        raise ValueError(f"int8 quantization runs on CPUs only; the model is on {model.device}: move it with .cpu()")
    with warnings.catch_warnings():
        # torch marks torch.ao.quantization for a move to torchao; it is the API that quantizes RNNs today.
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions .* are deprecated")
        return torch.ao.quantization.quantize_dynamic(
            model.eval(), {torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU}, dtype=torch.qint8, inplace=False
        )


@torch.no_grad()
def translate(model, tokenizer, sentences: Iterable[str], batch_size: int = 32, **generate_kwargs) -> list[str]:
    """Translate `sentences`, returning one decoded string per input, in input order.

    Sentences are batched by length (sorted, then restored) so that little of each batch is padding;
    `generate_kwargs` (num_beams, max_new_tokens, ...) override the model's generation config. Beam search takes
    each sentence out of its batch once its translation is final (`beam_search.beam_search_dropping_finished`,
    the same translations as `generate`'s own beam search).

    A sentence longer than `tokenizer.model_max_length` tokens is truncated to that length, as the model was trained
    on; a warning (logger `hf_attention.translation`) names its index in `sentences`, its length and the limit. Split
    long lines into sentences beforehand to translate all of them.

    Raises:
        ValueError: `num_beams`, `max_new_tokens` or `num_return_sequences` below 1, before anything is generated.
        TypeError: `sentences` is a single string, or holds something other than strings.
    """
    check_generation_settings(generate_kwargs)
    generate_kwargs = {"custom_generate": beam_search_dropping_finished, **generate_kwargs}
    sentences = sentence_list(sentences)
    warn_about_truncation(tokenizer, sentences, range(len(sentences)))
    model.eval()
    order = sorted(range(len(sentences)), key=lambda index: len(sentences[index]))
    translations = [""] * len(sentences)
    for indices in batched(order, batch_size):
        batch = [sentences[index] for index in indices]
        inputs = tokenizer(batch, return_tensors="pt", padding=True, truncation=True).to(model.device)
        generated = model.generate(**inputs, **generate_kwargs)
        for index, text in zip(indices, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
            translations[index] = text
    return translations


@dataclass
class Alignment:
    """The attention weights of one translated sentence.

    weights: [layers, heads, tgt_len, src_len], the cross attention; row i is the weights target token i gave the
        source tokens. None for `attention_type="none"`.
    encoder_self_attention: [self-attention layers, heads, src_len, src_len], the encoder's self-attention layers
        bottom to top (row i: the weights source token i gave every source token); None for an RNN encoder.
    decoder_self_attention: [self-attention layers, heads, tgt_len, tgt_len], the same for the decoder's layers,
        causal (row i: the weights target token i gave target tokens 0..i); None for an RNN decoder.
    """

    source_tokens: list[str]
    target_tokens: list[str]
    weights: torch.Tensor | None
    translation: str
    encoder_self_attention: torch.Tensor | None = None
    decoder_self_attention: torch.Tensor | None = None


@torch.no_grad()
def align(model, tokenizer, sentence: str, target: str | None = None, **generate_kwargs) -> Alignment:
    """Translate `sentence` (or use the given `target`) and return the attention weights that produce it.

    The weights come from one teacher-forced pass over the final translation, which equals what step-by-step
    decoding computed for it (see the modeling tests), so they are the alignment of the beam-search output itself.
    A `sentence` longer than `tokenizer.model_max_length` tokens is truncated, with a warning as in `translate`.
    """
    if not isinstance(sentence, str) or not (target is None or isinstance(target, str)):
        wrong = sentence if not isinstance(sentence, str) else target
        raise TypeError(f"align takes one sentence (and target) as a str, got {type(wrong).__name__}: {wrong!r:.60}")
    config = model.config
    layer_types = [*getattr(config, "encoder_layer_types", ()), *getattr(config, "decoder_layer_types", ())]
    has_self_attention = "self_attention" in layer_types
    if getattr(config, "attention_type", None) == "none" and not has_self_attention:
        raise ValueError("attention_type='none' has no attention weights to align with")
    check_generation_settings(generate_kwargs)
    warn_about_truncation(tokenizer, [sentence], [0])
    model.eval()
    inputs = tokenizer([sentence], return_tensors="pt", truncation=True).to(model.device)
    if target is None:
        generated = model.generate(**inputs, **generate_kwargs)[0]
        start = model.config.decoder_start_token_id
        labels = generated[1:] if generated[0].item() == start else generated
        labels = labels[labels != model.config.pad_token_id]
    else:
        labels = tokenizer(text_target=[target], return_tensors="pt")["input_ids"][0].to(model.device)
    outputs = model(**inputs, labels=labels[None], output_attentions=True)
    return alignment_from_outputs(tokenizer, inputs["input_ids"][0], labels, outputs)


def alignment_from_outputs(tokenizer, input_ids: torch.Tensor, labels: torch.Tensor, outputs) -> Alignment:
    """The `Alignment` of the first row of a teacher-forced pass run with `output_attentions=True`.

    Args:
        input_ids: [src_len], that row's source ids.
        labels: [tgt_len], that row's target ids (no decoder start token, no padding).
        outputs: the model's `Seq2SeqLMOutput` for the batch.
    """

    def first_row_of_each(layers):
        return None if layers is None else torch.stack([layer[0] for layer in layers]).float().cpu()

    return Alignment(
        source_tokens=tokenizer.convert_ids_to_tokens(input_ids.tolist()),
        target_tokens=tokenizer.convert_ids_to_tokens(labels.tolist()),
        weights=first_row_of_each(outputs.cross_attentions),
        translation=tokenizer.decode(labels, skip_special_tokens=True),
        encoder_self_attention=first_row_of_each(outputs.encoder_attentions),
        decoder_self_attention=first_row_of_each(outputs.decoder_attentions),
    )


def plot_alignment(alignment: Alignment, path: str | Path, layer: int = -1, title: str | None = None) -> Path:
    """Heatmap of one layer's cross attention (default: the top decoder layer), one panel per head plus their
    average: source tokens on the x axis, target tokens on the y axis."""
    if alignment.weights is None:
        raise ValueError("this model has no cross attention (attention_type='none') to plot")
    return plot_attention(
        alignment.weights[layer],
        alignment.source_tokens,
        alignment.target_tokens,
        path,
        title=title or alignment.translation,
    )


def plot_self_attention(
    alignment: Alignment, path: str | Path, index: int, stack: str = "encoder", title: str | None = None
) -> Path:
    """Heatmap of the `index`-th self-attention layer (counted from 0 among the self-attention layers) of the
    `stack` ("encoder": source x source, "decoder": target x target), one panel per head plus their average, the
    queries on the y axis."""
    if stack not in ("encoder", "decoder"):
        raise ValueError(f"stack={stack!r}: use 'encoder' or 'decoder'")
    weights = alignment.encoder_self_attention if stack == "encoder" else alignment.decoder_self_attention
    if weights is None:
        raise ValueError(f"this model's {stack} has no self-attention layer to plot")
    tokens = alignment.source_tokens if stack == "encoder" else alignment.target_tokens
    return plot_attention(weights[index], tokens, tokens, path, title=title or alignment.translation)


def plot_self_attentions(alignment: Alignment, path: str | Path, title: str | None = None) -> list[Path]:
    """One figure per self-attention layer of either stack, beside `path`: `<stem>_encoder_self_attention_<k><suffix>`
    and `<stem>_decoder_self_attention_<k><suffix>`, k counted from 0 among that stack's self-attention layers."""
    path = Path(path)
    title = title or alignment.translation
    paths = []
    stacks = {"encoder": alignment.encoder_self_attention, "decoder": alignment.decoder_self_attention}
    for stack, weights in stacks.items():
        for index in range(0 if weights is None else len(weights)):
            layer_path = path.with_name(f"{path.stem}_{stack}_self_attention_{index}{path.suffix}")
            layer_title = f"{title}\n{stack} self-attention {index}"
            paths.append(plot_self_attention(alignment, layer_path, index, stack, layer_title))
    return paths


def plot_alignments(alignment: Alignment, path: str | Path, title: str | None = None) -> list[Path]:
    """Every attention of the sentence, one figure per layer: the cross attention of each decoder layer (source x
    target), then the self-attention layers of the encoder (source x source) and of the decoder (target x target).

    `path` names the top decoder layer's cross attention; the other figures sit beside it, named after their
    layer (`<stem>_cross_layer<l><suffix>`, and those of `plot_self_attentions`), counted from 0.
    """
    path = Path(path)
    title = title or alignment.translation
    paths = []
    if alignment.weights is not None:
        top = len(alignment.weights) - 1
        for layer in range(top + 1):
            layer_path = path if layer == top else path.with_name(f"{path.stem}_cross_layer{layer}{path.suffix}")
            paths.append(plot_alignment(alignment, layer_path, layer, f"{title}\ncross attention, layer {layer}"))
    return paths + plot_self_attentions(alignment, path, title)


__all__ = [
    "Alignment",
    "align",
    "alignment_from_outputs",
    "batched",
    "check_generation_settings",
    "plot_alignment",
    "plot_alignments",
    "plot_self_attention",
    "plot_self_attentions",
    "sentence_list",
    "translate",
    "warn_about_truncation",
]
