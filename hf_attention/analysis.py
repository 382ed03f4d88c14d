"""What attention is for, measured: translation quality against source length, and alignment against a gold one.

Bahdanau et al. (2015) motivate attention with two figures: BLEU against sentence length, where the fixed-context
encoder-decoder falls with length while the attentional model holds up (their Figure 2), and the alignment weights
a_ij as heatmaps (their Figure 3). This module computes both for any set of checkpoints:

- length buckets (`make_buckets`, `group_by_length`) and per-bucket scores (`scores_by_length`: sacreBLEU BLEU and
  chrF through `load_translation_metric()`, and exact match), plotted one line per model (`plot_by_length`);
- the share of target tokens whose argmax attention hits the gold source position (`alignment_hits`,
  `gold_alignment_hits`), for tasks with a known alignment such as reversal (`reversal_gold_alignment`);
- `compare_attention_types`, the job behind `scripts/reproduce.py`: train each attention type with `run_training`
  (or reuse given checkpoints), translate the test split with `translate`, score it by length, draw the heatmaps of
  the same sentences for every model with `align` / `plot_alignment`, write a JSON report and the plots.

Lengths are counted in whitespace-separated source words, which does not depend on any model's tokenizer (the
paper counts words too); for the synthetic tasks one word is one letter.
"""

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM

from .configuration_seq2seq_attention import ATTENTION_TYPES
from .metrics import load_translation_metric
from .plotting import _pyplot, save_figure
from .tokenization import load_tokenizer
from .training import load_corpus, run_training
from .translation import align, batched, plot_alignment, translate

logger = logging.getLogger(__name__)

COMPARED_ATTENTION_TYPES = ("none", "bahdanau", "scaled_dot")
REPORT_NAME = "length_comparison.json"


# ----------------------------------------------------------------------------------------------------------------
# Length buckets


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


# ----------------------------------------------------------------------------------------------------------------
# Scores


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Share of hypotheses equal to their reference, ignoring whitespace at the ends and between words."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not hypotheses:
        raise ValueError("exact match of no sentences")
    matches = sum(hyp.split() == ref.split() for hyp, ref in zip(hypotheses, references, strict=True))
    return matches / len(hypotheses)


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str], metric=None, signatures: bool = False) -> dict:
    """Corpus BLEU and chrF (sacreBLEU, via `load_translation_metric()` unless a `metric` is given), exact match;
    with `signatures`, sacreBLEU's signatures of the two scores too."""
    metric = metric or load_translation_metric()
    scores = metric.compute(predictions=list(hypotheses), references=list(references))
    result = {
        "count": len(hypotheses),
        "bleu": scores["bleu"],
        "chrf": scores["chrf"],
        "exact_match": exact_match(hypotheses, references),
    }
    if signatures:
        result.update(bleu_signature=scores["bleu_signature"], chrf_signature=scores["chrf_signature"])
    return result


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


# ----------------------------------------------------------------------------------------------------------------
# Alignment against a gold alignment


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


# ----------------------------------------------------------------------------------------------------------------
# Plots and tables


METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF", "exact_match": "exact match", "alignment": "alignment accuracy"}


def plot_by_length(
    series: dict[str, list[dict]], metric: str, path: str | Path, title: str | None = None, ylabel: str | None = None
) -> Path:
    """A line per model of `metric` against the length buckets (as Figure 2 of Bahdanau et al. 2015).

    Args:
        series: model name -> rows with `bucket`, `count` and `metric` keys (e.g. from `scores_by_length`), the
            same buckets in the same order for every model.
        metric: the key to plot, e.g. "bleu" or "exact_match".
        path: the image to write.
    """
    if not series:
        raise ValueError("nothing to plot: no models")
    labels = [[row["bucket"] for row in rows] for rows in series.values()]
    if any(model_labels != labels[0] for model_labels in labels):
        raise ValueError(f"the models have different buckets: {labels}")
    first = next(iter(series.values()))
    ticks = [f"{row['bucket']}\n(n={row['count']})" for row in first]
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.0, 4.0))
    markers = "osD^v<>"
    for index, (name, rows) in enumerate(series.items()):
        values = [float("nan") if row[metric] is None else row[metric] for row in rows]
        axis.plot(range(len(rows)), values, marker=markers[index % len(markers)], label=name)
    axis.set_xticks(range(len(ticks)), ticks)
    axis.set_xlabel("source length (words)")
    axis.set_ylabel(ylabel or METRIC_NAMES.get(metric, metric))
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend()
    if title:
        axis.set_title(title, fontsize=10)
    return save_figure(figure, path, dpi=100)


def markdown_table(series: dict[str, list[dict]], metric: str, digits: int = 2, scale: float = 1.0) -> str:
    """`metric` per bucket (columns, with counts) per model (rows), as a Markdown table."""
    first = next(iter(series.values()))
    header = "| | " + " | ".join(f"{row['bucket']} (n={row['count']})" for row in first) + " |"
    lines = [header, "|---" * (len(first) + 1) + "|"]
    for name, rows in series.items():
        cells = ["-" if row[metric] is None else f"{scale * row[metric]:.{digits}f}" for row in rows]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# The comparison job


@dataclass
class ComparisonArguments:
    """What `scripts/reproduce.py` compares and how it buckets; the training preset comes with `--config`."""

    attention_types: list[str] = field(
        default_factory=lambda: list(COMPARED_ATTENTION_TYPES),
        metadata={"help": "attention types to compare, each trained with the same preset unless in --checkpoints"},
    )
    checkpoints: list[str] = field(
        default_factory=list,
        metadata={"help": "TYPE=DIR pairs: reuse these trained checkpoints instead of training, e.g. none=outputs/x"},
    )
    bucket_edges: list[int] = field(
        default_factory=lambda: [1, 6, 9, 12, 15],
        metadata={"help": "lower ends of the source-length buckets in words: 1 6 9 12 15 -> 1-5, 6-8, ..., 15+"},
    )
    min_bucket_size: int = field(default=20, metadata={"help": "refuse buckets with fewer test sentences"})
    plot_metric: str = field(default="bleu", metadata={"help": "bleu, chrf or exact_match: the length plot's y"})
    heatmap_sentences: list[str] = field(
        default_factory=list,
        metadata={"help": "sentences whose alignment is drawn for every model; default: test sentences"},
    )
    heatmap_count: int = field(
        default=3, metadata={"help": "without --heatmap_sentences: this many test sentences, from spread buckets"}
    )
    heatmap_layer: int = field(default=-1, metadata={"help": "decoder layer of the heatmaps (-1: the top)"})
    max_test_samples: int | None = field(default=None, metadata={"help": "score only the first N test pairs"})


def parse_checkpoints(items: Sequence[str], attention_types: Sequence[str]) -> dict[str, Path]:
    """`TYPE=DIR` strings -> {type: folder}, each type one of `attention_types` at most once, each folder a saved
    model (with `config.json`) of that attention type."""
    checkpoints = {}
    for item in items:
        name, separator, folder = item.partition("=")
        if not separator or not name or not folder:
            raise ValueError(f"--checkpoints {item!r}: expected TYPE=DIR, e.g. bahdanau=outputs/table_bahdanau")
        if name not in attention_types:
            raise ValueError(
                f"--checkpoints {item!r}: attention type {name!r} is not among the compared ones "
                f"({', '.join(attention_types)}; set them with --attention_types)"
            )
        if name in checkpoints:
            raise ValueError(f"--checkpoints: {name!r} is given twice ({checkpoints[name]} and {folder})")
        path = Path(folder)
        if not (path / "config.json").is_file():
            problem = "no such folder" if not path.is_dir() else "no config.json in it (not a saved model)"
            raise FileNotFoundError(f"--checkpoints {item!r}: {path}: {problem}")
        saved_type = json.loads((path / "config.json").read_text()).get("attention_type")
        if saved_type != name:
            raise ValueError(f"--checkpoints {item!r}: {path} holds a model with attention_type {saved_type!r}")
        checkpoints[name] = path
    return checkpoints


def _check_arguments(arguments: ComparisonArguments) -> None:
    unknown = [name for name in arguments.attention_types if name not in ATTENTION_TYPES]
    if unknown or not arguments.attention_types:
        raise ValueError(f"--attention_types {unknown or '(none)'}: choose from {', '.join(ATTENTION_TYPES)}")
    if len(set(arguments.attention_types)) != len(arguments.attention_types):
        raise ValueError(f"--attention_types {arguments.attention_types}: a type is listed twice")
    if arguments.plot_metric not in ("bleu", "chrf", "exact_match"):
        raise ValueError(f"--plot_metric {arguments.plot_metric!r}: choose bleu, chrf or exact_match")
    if arguments.min_bucket_size < 1:
        raise ValueError(f"--min_bucket_size {arguments.min_bucket_size}: must be >= 1")


def _warn_on_other_data(checkpoint: Path, data_args) -> None:
    """A reused checkpoint trained on another split may have seen the test sentences: say so."""
    record = checkpoint / "training_run.json"
    if not record.is_file():
        return
    trained = json.loads(record.read_text()).get("data_arguments", {})
    keys = ("corpus", "src_lang", "tgt_lang", "split_seed", "validation_size", "test_size", "synthetic_size")
    keys += ("synthetic_min_length", "synthetic_max_length")
    now = {key: getattr(data_args, key) for key in keys}
    differing = {key: (trained[key], now[key]) for key in keys if key in trained and trained[key] != now[key]}
    if differing:
        logger.warning("%s was trained on other data (trained, now): %s", checkpoint, differing)


def _heatmap_sources(arguments: ComparisonArguments, sources: list[str], groups: list[list[int]]) -> list[str]:
    if arguments.heatmap_sentences:
        return list(arguments.heatmap_sentences)
    count = min(arguments.heatmap_count, len(groups))
    if count <= 0:
        return []
    # The first test sentence of buckets spread from the shortest to the longest.
    picks = [round(index * (len(groups) - 1) / max(count - 1, 1)) for index in range(count)]
    return [sources[groups[bucket][0]] for bucket in dict.fromkeys(picks) if groups[bucket]]


def _train(attention_type: str, model_args, data_args, training_args) -> Path:
    output_dir = Path(training_args.output_dir) / attention_type
    logger.info("training attention_type=%s into %s", attention_type, output_dir)
    run_training(
        dataclasses.replace(model_args, attention_type=attention_type),
        data_args,
        dataclasses.replace(training_args, output_dir=str(output_dir)),
    )
    return output_dir


def evaluate_checkpoint(
    checkpoint: Path,
    sources: list[str],
    references: list[str],
    lengths: list[int],
    buckets: list[LengthBucket],
    arguments: ComparisonArguments,
    heatmap_sources: list[str],
    heatmap_dir: Path,
    gold_alignment: Callable[[int], list[int]] | None,
    batch_size: int,
    metric,
) -> dict:
    """Scores of one checkpoint on the test split (overall and by length), its heatmaps and alignment accuracy."""
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint).eval()
    tokenizer = load_tokenizer(checkpoint)
    attention_type = model.config.attention_type
    hypotheses = translate(model, tokenizer, sources, batch_size=batch_size)
    translations = heatmap_dir.parent / f"translations_{attention_type}.jsonl"
    translations.parent.mkdir(parents=True, exist_ok=True)
    with translations.open("w", encoding="utf-8") as lines:
        for source, reference, hypothesis in zip(sources, references, hypotheses, strict=True):
            row = {"source": source, "reference": reference, "hypothesis": hypothesis}
            lines.write(json.dumps(row, ensure_ascii=False) + "\n")
    result = {
        "checkpoint": str(checkpoint),
        "num_beams": model.generation_config.num_beams,
        "parameters": model.num_parameters(),
        "num_attention_heads": model.config.num_attention_heads if attention_type != "none" else 0,
        "overall": corpus_scores(hypotheses, references, metric, signatures=True),
        "by_length": scores_by_length(lengths, hypotheses, references, buckets, metric, arguments.min_bucket_size),
    }
    heatmaps = []
    for index, sentence in enumerate(heatmap_sources):
        if attention_type == "none":
            translation = translate(model, tokenizer, [sentence])[0]
            heatmaps.append({"sentence": sentence, "translation": translation, "path": None})
            continue
        alignment = align(model, tokenizer, sentence)
        title = f"{attention_type}: {sentence}\n-> {alignment.translation}"
        path = plot_alignment(alignment, heatmap_dir / f"{attention_type}_{index}.png", arguments.heatmap_layer, title)
        heatmaps.append({"sentence": sentence, "translation": alignment.translation, "path": str(path)})
    result["heatmaps"] = heatmaps
    if gold_alignment is not None and attention_type != "none":
        hits = gold_alignment_hits(model, tokenizer, sources, references, gold_alignment, batch_size)
        result["alignment_accuracy"] = alignment_by_length(hits, lengths, buckets, arguments.min_bucket_size)
    else:
        result["alignment_accuracy"] = None
    return result


def _alignment_series(models: dict) -> dict[str, list[dict]]:
    """Head-averaged alignment accuracy per bucket (as `alignment`) of the models that have one."""
    return {
        name: [{**row, "alignment": row["average_of_heads"]} for row in result["alignment_accuracy"]["by_length"]]
        for name, result in models.items()
        if result["alignment_accuracy"]
    }


def compare_attention_types(arguments: ComparisonArguments, model_args, data_args, training_args) -> dict:
    """Train (or reuse) one model per attention type with the same preset, score each on the test split by source
    length, draw heatmaps of the same sentences, and write into `training_args.output_dir`:

    - `length_comparison.json`: buckets with counts, and per model the overall and per-bucket BLEU / chrF / exact
      match, the heatmap sentences and their translations, and (tasks with a gold alignment) alignment accuracy;
    - `{plot_metric}_by_length.png` (one line per model), `alignment_by_length.png` (gold-alignment tasks);
    - `heatmaps/{type}_{k}.png`: one panel per head and their average (no heatmap for `none`).

    Models trained here go to `output_dir/{type}`. Bad arguments (unknown types, missing checkpoints, buckets with
    fewer than `min_bucket_size` test sentences) fail before any training. Returns the report.
    """
    _check_arguments(arguments)
    if training_args.push_to_hub:
        raise ValueError("--push_to_hub: the comparison trains several models; push one with scripts/push_to_hub.py")
    checkpoints = parse_checkpoints(arguments.checkpoints, arguments.attention_types)
    buckets = make_buckets(arguments.bucket_edges)
    test = load_corpus(data_args)["test"]
    if arguments.max_test_samples is not None:
        test = test.select(range(min(arguments.max_test_samples, len(test))))
    sources = [pair[data_args.src_lang] for pair in test["translation"]]
    references = [pair[data_args.tgt_lang] for pair in test["translation"]]
    lengths = word_lengths(sources)
    groups = group_by_length(lengths, buckets, arguments.min_bucket_size)
    gold_alignment = GOLD_ALIGNMENTS.get(data_args.corpus)
    heatmap_sources = _heatmap_sources(arguments, sources, groups)
    output_dir = Path(training_args.output_dir)
    logger.info(
        "test split: %d pairs; source words per bucket: %s",
        len(sources),
        ", ".join(f"{bucket.label}: {len(group)}" for bucket, group in zip(buckets, groups, strict=True)),
    )

    metric = load_translation_metric()
    models = {}
    for attention_type in arguments.attention_types:
        trained = attention_type not in checkpoints
        if trained:
            checkpoint = _train(attention_type, model_args, data_args, training_args)
        else:
            checkpoint = checkpoints[attention_type]
            _warn_on_other_data(checkpoint, data_args)
        logger.info("evaluating %s (%s)", attention_type, checkpoint)
        result = evaluate_checkpoint(
            checkpoint,
            sources,
            references,
            lengths,
            buckets,
            arguments,
            heatmap_sources,
            output_dir / "heatmaps",
            gold_alignment,
            training_args.per_device_eval_batch_size,
            metric,
        )
        models[attention_type] = {"trained_here": trained, **result}

    report = {
        "command": " ".join(sys.argv),
        "corpus": data_args.corpus,
        "src_lang": data_args.src_lang,
        "tgt_lang": data_args.tgt_lang,
        "test_pairs": len(sources),
        "length_unit": "source words",
        "buckets": [
            {"bucket": bucket.label, "low": bucket.low, "high": bucket.high, "count": len(group)}
            for bucket, group in zip(buckets, groups, strict=True)
        ],
        "gold_alignment": data_args.corpus if gold_alignment else None,
        "heatmap_sentences": heatmap_sources,
        "models": models,
        "plots": {},
    }
    series = {name: result["by_length"] for name, result in models.items()}
    title = f"{data_args.corpus} {data_args.src_lang}->{data_args.tgt_lang}, {len(sources)} test pairs"
    metric_plot = output_dir / f"{arguments.plot_metric}_by_length.png"
    report["plots"][arguments.plot_metric] = str(plot_by_length(series, arguments.plot_metric, metric_plot, title))
    alignment_series = _alignment_series(models)
    if alignment_series:
        path = plot_by_length(
            alignment_series,
            "alignment",
            output_dir / "alignment_by_length.png",
            title,
            "alignment accuracy (head average)",
        )
        report["plots"]["alignment"] = str(path)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / REPORT_NAME).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    logger.info("report: %s", output_dir / REPORT_NAME)
    return report


def report_tables(report: dict) -> str:
    """The report's tables in Markdown: counts, BLEU / chrF / exact match by length, overall scores, alignment."""
    series = {name: result["by_length"] for name, result in report["models"].items()}
    parts = []
    for metric, scale in (("bleu", 1.0), ("chrf", 1.0), ("exact_match", 100.0)):
        name = METRIC_NAMES[metric] + (" (%)" if scale != 1.0 else "")
        parts.append(
            f"{name} by source length ({report['length_unit']}):\n\n{markdown_table(series, metric, 2, scale)}"
        )
    overall = ["| | test pairs | BLEU | chrF | exact match (%) |", "|---|---|---|---|---|"]
    for name, result in report["models"].items():
        scores = result["overall"]
        overall.append(
            f"| `{name}` | {scores['count']} | {scores['bleu']:.2f} | {scores['chrf']:.2f} | "
            f"{100 * scores['exact_match']:.1f} |"
        )
    parts.append("Overall:\n\n" + "\n".join(overall))
    alignment_series = _alignment_series(report["models"])
    if alignment_series:
        lines = [markdown_table(alignment_series, "alignment", 1, 100.0), ""]
        lines += ["| | head average | each head |", "|---|---|---|"]
        for name in alignment_series:
            accuracy = report["models"][name]["alignment_accuracy"]
            heads = ", ".join(f"{100 * value:.1f}" for value in accuracy["overall"]["per_head"])
            lines.append(f"| `{name}` | {100 * accuracy['overall']['average_of_heads']:.1f} | {heads} |")
        parts.append("Alignment accuracy (%), argmax attention on the gold source word:\n\n" + "\n".join(lines))
    return "\n\n".join(parts)


__all__ = [
    "COMPARED_ATTENTION_TYPES",
    "GOLD_ALIGNMENTS",
    "ComparisonArguments",
    "LengthBucket",
    "alignment_accuracy",
    "alignment_by_length",
    "alignment_hits",
    "bucket_index",
    "compare_attention_types",
    "corpus_scores",
    "evaluate_checkpoint",
    "exact_match",
    "gold_alignment_hits",
    "group_by_length",
    "make_buckets",
    "markdown_table",
    "parse_checkpoints",
    "plot_by_length",
    "report_tables",
    "reversal_gold_alignment",
    "scores_by_length",
    "word_lengths",
]
