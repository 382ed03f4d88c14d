"""Source-length buckets and scores per bucket: translation quality against sentence length, as in Figure 2 of
Bahdanau et al. (2015), where the fixed-context encoder-decoder falls with length and the attentional model holds up.

Lengths are counted in whitespace-separated source words, which does not depend on any model's tokenizer (the
paper counts words too); for the synthetic tasks one word is one letter.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from .evaluation import corpus_scores
from .metrics import load_translation_metric


@dataclass(frozen=True)
class LengthBucket:
    """Lengths `low` to `high` inclusive; `high` None means no upper end."""

    low: int
    high: int | None

    @property
    def label(self) -> str:
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"

    def __contains__(self, length: int) -> bool:
        return length >= self.low and (self.high is None or length <= self.high)


def make_buckets(edges: Sequence[int]) -> list[LengthBucket]:
    """Buckets from their lower ends: `[1, 6, 11, 16]` gives 1-5, 6-10, 11-15 and 16+ (the last is open)."""
    edges = list(edges)
    if not edges:
        raise ValueError("bucket edges: need at least one lower end, e.g. 1 6 11 16")
    if any(not isinstance(edge, int) or isinstance(edge, bool) or edge < 1 for edge in edges):
        raise ValueError(f"bucket edges {edges}: every edge must be an integer >= 1")
    if any(later <= earlier for earlier, later in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"bucket edges {edges}: must be strictly increasing")
    highs = [edge - 1 for edge in edges[1:]] + [None]
    return [LengthBucket(low, high) for low, high in zip(edges, highs, strict=True)]


def bucket_index(length: int, buckets: Sequence[LengthBucket]) -> int:
    """The index of the bucket holding `length`."""
    for index, bucket in enumerate(buckets):
        if length in bucket:
            return index
    raise ValueError(
        f"length {length} is in no bucket ({', '.join(bucket.label for bucket in buckets)}): "
        f"lower the first bucket edge to {length} or less"
    )


def group_by_length(lengths: Sequence[int], buckets: Sequence[LengthBucket], min_count: int = 1) -> list[list[int]]:
    """The indices of the items of each bucket, in item order.

    Raises ValueError when a bucket gets fewer than `min_count` items (a score over a handful of sentences says
    little), naming it and giving every bucket's count so that the edges can be moved.
    """
    groups = [[] for _ in buckets]
    for item, length in enumerate(lengths):
        groups[bucket_index(length, buckets)].append(item)
    small = [bucket.label for bucket, group in zip(buckets, groups, strict=True) if len(group) < min_count]
    if small:
        counts = ", ".join(f"{bucket.label}: {len(group)}" for bucket, group in zip(buckets, groups, strict=True))
        problem = "are empty" if min_count == 1 else f"hold fewer than {min_count} items"
        raise ValueError(
            f"length buckets {', '.join(small)} {problem} (counts {counts}); "
            "choose other bucket edges (or a smaller minimum bucket size)"
        )
    return groups


def word_lengths(sentences: Sequence[str]) -> list[int]:
    """Whitespace-separated words of each sentence."""
    return [len(sentence.split()) for sentence in sentences]


def scores_by_length(
    lengths: Sequence[int],
    hypotheses: Sequence[str],
    references: Sequence[str],
    buckets: Sequence[LengthBucket],
    metric=None,
    min_count: int = 1,
) -> list[dict]:
    """One row per bucket: `bucket` (its label), `low`, `high`, `count`, `bleu`, `chrf`, `exact_match`.

    BLEU and chrF are corpus scores over the bucket's sentences (not averages of sentence scores).
    """
    if not len(lengths) == len(hypotheses) == len(references):
        raise ValueError(f"{len(lengths)} lengths, {len(hypotheses)} hypotheses and {len(references)} references")
    metric = metric or load_translation_metric()
    rows = []
    for bucket, group in zip(buckets, group_by_length(lengths, buckets, min_count), strict=True):
        row = {"bucket": bucket.label, "low": bucket.low, "high": bucket.high}
        if group:
            row.update(corpus_scores([hypotheses[i] for i in group], [references[i] for i in group], metric))
        else:
            row.update({"count": 0, "bleu": None, "chrf": None, "exact_match": None})
        rows.append(row)
    return rows


def markdown_table(series: dict[str, list[dict]], metric: str, digits: int = 2, scale: float = 1.0) -> str:
    """`metric` per bucket (columns, with counts) per model (rows), as a Markdown table."""
    first = next(iter(series.values()))
    header = "| | " + " | ".join(f"{row['bucket']} (n={row['count']})" for row in first) + " |"
    lines = [header, "|---" * (len(first) + 1) + "|"]
    for name, rows in series.items():
        cells = ["-" if row[metric] is None else f"{scale * row[metric]:.{digits}f}" for row in rows]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = [
    "LengthBucket",
    "bucket_index",
    "group_by_length",
    "make_buckets",
    "markdown_table",
    "scores_by_length",
    "word_lengths",
]
