"""Translating with a trained checkpoint, and reading off the alignment (cross-attention weights) of a translation.

Works on any `AutoModelForSeq2SeqLM` + tokenizer pair; the helpers only batch, generate and decode.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .plotting import plot_attention


def batched(items: Iterable, batch_size: int) -> Iterator[list]:
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


@torch.no_grad()
def translate(model, tokenizer, sentences: Iterable[str], batch_size: int = 32, **generate_kwargs) -> list[str]:
    """Translate `sentences`, returning one decoded string per input, in input order.

    Sentences are batched by length (sorted, then restored) so that little of each batch is padding;
    `generate_kwargs` (num_beams, max_new_tokens, ...) override the model's generation config.
    """
    sentences = list(sentences)
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
    """The cross-attention weights of one translated sentence.

    weights: [layers, heads, tgt_len, src_len]; row i is the weights target token i gave the source tokens.
    """

    source_tokens: list[str]
    target_tokens: list[str]
    weights: torch.Tensor
    translation: str


@torch.no_grad()
def align(model, tokenizer, sentence: str, target: str | None = None, **generate_kwargs) -> Alignment:
    """Translate `sentence` (or use the given `target`) and return the attention weights that produce it.

    The weights come from one teacher-forced pass over the final translation, which equals what step-by-step
    decoding computed for it (see the modeling tests), so they are the alignment of the beam-search output itself.
    """
    if getattr(model.config, "attention_type", None) == "none":
        raise ValueError("attention_type='none' has no attention weights to align with")
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
    weights = torch.stack([layer[0] for layer in outputs.cross_attentions])
    return Alignment(
        source_tokens=tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist()),
        target_tokens=tokenizer.convert_ids_to_tokens(labels.tolist()),
        weights=weights.float().cpu(),
        translation=tokenizer.decode(labels, skip_special_tokens=True),
    )


def plot_alignment(alignment: Alignment, path: str | Path, layer: int = -1, title: str | None = None) -> Path:
    """Heatmap of one layer's weights (default: the top decoder layer), one panel per head plus their average."""
    return plot_attention(
        alignment.weights[layer],
        alignment.source_tokens,
        alignment.target_tokens,
        path,
        title=title or alignment.translation,
    )


__all__ = ["Alignment", "align", "batched", "plot_alignment", "translate"]
