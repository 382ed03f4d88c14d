"""Alignment accuracy against a gold alignment: the share of target tokens whose largest attention weight a_ij falls
on the source word they translate, for tasks where that word is known (reversal: target word i is source word
n-1-i). It measures whether the weights users look at in the heatmaps are the alignment.
"""

from collections.abc import Callable, Sequence

import torch

from .length_buckets import LengthBucket, group_by_length
from .translation import batched, sentence_list


def reversal_gold_alignment(length: int) -> list[int]:
    """Reversal of `length` words: target word i is source word `length - 1 - i`."""
    return list(range(length - 1, -1, -1))


# corpus name -> gold source word of each target word, from the source length.
GOLD_ALIGNMENTS: dict[str, Callable[[int], list[int]]] = {"reversal": reversal_gold_alignment}


def alignment_hits(weights: torch.Tensor, gold: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Count the target tokens whose largest attention weight falls on their gold source position.

    Args:
        weights: [..., tgt_len, src_len] attention weights, e.g. [batch, heads, tgt_len, src_len] or
            [tgt_len, src_len].
        gold: [..., tgt_len] (broadcast against `weights.shape[:-1]`), the gold source position of each target
            token, or -1 where a target token has none (it is not scored: `</s>`, padding).

    Returns:
        `(hits, scored)`, both of shape `weights.shape[:-2]` (broadcast with `gold.shape[:-1]`): the target tokens
        whose argmax is the gold position, and the target tokens scored.
    """
    if weights.shape[-2] != gold.shape[-1]:
        raise ValueError(f"weights of shape {tuple(weights.shape)} and gold of shape {tuple(gold.shape)}: tgt_len")
    if (gold >= weights.shape[-1]).any():
        raise ValueError(f"gold positions up to {gold.max().item()} for {weights.shape[-1]} source positions")
    predicted = weights.argmax(dim=-1)
    scored = (gold >= 0).expand(predicted.shape)
    hits = (predicted == gold) & scored
    return hits.sum(dim=-1), scored.sum(dim=-1)


def alignment_accuracy(weights: torch.Tensor, gold: torch.Tensor) -> float:
    """Share of scored target tokens whose argmax attention is the gold position (shapes as in `alignment_hits`)."""
    hits, scored = alignment_hits(weights, gold)
    if scored.sum() == 0:
        raise ValueError("no target token has a gold position")
    return (hits.sum() / scored.sum()).item()


@torch.no_grad()
def gold_alignment_hits(
    model,
    tokenizer,
    sources: Sequence[str],
    targets: Sequence[str],
    gold_alignment: Callable[[int], list[int]],
    batch_size: int = 64,
    layer: int = -1,
) -> dict[str, torch.Tensor]:
    """Alignment hits of a model teacher-forced on the reference targets, one layer's weights.

    The gold alignment is given in words (`gold_alignment(source_words)[i]` is the source word of target word i);
    it becomes token positions only when the tokenizer gives one token per word plus `</s>` on both sides, which is
    checked (ValueError otherwise). `</s>` on the target side is not scored.

    Returns:
        `average`: [pairs] hits of the head-averaged weights; `heads`: [pairs, heads] hits of each head alone;
        `scored`: [pairs] target tokens scored.
    """
    if getattr(model.config, "attention_type", None) == "none":
        raise ValueError("attention_type='none' has no attention weights to compare with a gold alignment")
    sources, targets = sentence_list(sources, "sources"), sentence_list(targets, "targets")
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources for {len(targets)} targets")
    model.eval()
    average, heads, scored = [], [], []
    order = sorted(range(len(sources)), key=lambda index: len(sources[index]))
    for indices in batched(order, batch_size):
        batch_sources = [sources[index] for index in indices]
        batch_targets = [targets[index] for index in indices]
        inputs = tokenizer(batch_sources, text_target=batch_targets, return_tensors="pt", padding=True)
        labels = inputs.pop("labels")
        gold = torch.full(labels.shape, -1, dtype=torch.long)
        for row, (source, target) in enumerate(zip(batch_sources, batch_targets, strict=True)):
            words, target_words = len(source.split()), len(target.split())
            source_tokens = int(inputs["attention_mask"][row].sum())
            target_tokens = int((labels[row] != tokenizer.pad_token_id).sum())
            if source_tokens != words + 1 or target_tokens != target_words + 1:
                raise ValueError(
                    f"the gold alignment is in words, but the tokenizer does not give one token per word: "
                    f"{source!r} -> {source_tokens} tokens, {target!r} -> {target_tokens} tokens (with </s>)"
                )
            positions = gold_alignment(words)
            if len(positions) != target_words:
                raise ValueError(f"gold alignment of {len(positions)} words for the {target_words} of {target!r}")
            gold[row, : len(positions)] = torch.tensor(positions)
        labels = labels.masked_fill(labels == tokenizer.pad_token_id, -100)
        outputs = model(**inputs.to(model.device), labels=labels.to(model.device), output_attentions=True)
        weights = outputs.cross_attentions[layer].float().cpu()  # [batch, heads, tgt_len, src_len]
        batch_average, batch_scored = alignment_hits(weights.mean(dim=1), gold)
        batch_heads, _ = alignment_hits(weights, gold[:, None, :])
        average.append(batch_average)
        heads.append(batch_heads)
        scored.append(batch_scored)
    restore = torch.empty(len(order), dtype=torch.long)
    restore[torch.tensor(order)] = torch.arange(len(order))
    return {
        "average": torch.cat(average)[restore],
        "heads": torch.cat(heads)[restore],
        "scored": torch.cat(scored)[restore],
    }


def alignment_by_length(
    hits: dict[str, torch.Tensor], lengths: Sequence[int], buckets: Sequence[LengthBucket], min_count: int = 1
) -> dict:
    """Alignment accuracy (head average, and each head) overall and per bucket, from `gold_alignment_hits`."""

    def accuracy(indices: list[int]) -> dict:
        scored = hits["scored"][indices].sum().item()
        return {
            "count": len(indices),
            "scored_tokens": scored,
            "average_of_heads": hits["average"][indices].sum().item() / scored if scored else None,
            "per_head": [
                head.item() / scored if scored else None for head in hits["heads"][indices].sum(dim=0).unbind()
            ],
        }

    groups = group_by_length(lengths, buckets, min_count)
    by_length = [{"bucket": bucket.label, **accuracy(group)} for bucket, group in zip(buckets, groups, strict=True)]
    return {"overall": accuracy(list(range(len(lengths)))), "by_length": by_length}


__all__ = [
    "GOLD_ALIGNMENTS",
    "alignment_accuracy",
    "alignment_by_length",
    "alignment_hits",
    "gold_alignment_hits",
    "reversal_gold_alignment",
]
