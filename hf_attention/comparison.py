"""The attention comparison behind `scripts/reproduce.py`: train each attention type, with each encoder type, with
the same preset (or reuse given checkpoints), translate the test split, score it by source length
(`length_buckets`), measure alignment accuracy where a gold alignment is known (`gold_alignment`), draw heatmaps of
the same sentences for every model, and write a JSON report, plots and Markdown tables.
"""

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .arguments import SPLIT_ARGUMENTS
from .checkpoint_loading import load_checkpoint, read_training_record
from .configuration_seq2seq_attention import ATTENTION_TYPES
from .evaluation import corpus_scores, draw_heatmaps, write_translations
from .gold_alignment import GOLD_ALIGNMENTS, alignment_by_length, gold_alignment_hits
from .length_buckets import LengthBucket, group_by_length, make_buckets, markdown_table, scores_by_length, word_lengths
from .loading import load_corpus
from .metrics import load_translation_metric
from .plotting import METRIC_NAMES, plot_by_length
from .training_trainer import run_training
from .translation import translate

logger = logging.getLogger(__name__)

COMPARED_ATTENTION_TYPES = ("none", "bahdanau", "scaled_dot")
# RNN layers on both sides (the default), self-attention encoder layers under the RNN decoder (the hybrid), or
# self-attention layers on both sides (a Transformer).
ENCODER_TYPES = ("rnn", "self_attention", "transformer")
REPORT_NAME = "length_comparison.json"


@dataclass
class ComparisonArguments:
    """What `scripts/reproduce.py` compares and how it buckets; the training preset comes with `--config`."""

    attention_types: list[str] = field(
        default_factory=lambda: list(COMPARED_ATTENTION_TYPES),
        metadata={"help": "attention types to compare, each trained with the same preset unless in --checkpoints"},
    )
    encoder_types: list[str] = field(
        default_factory=lambda: ["rnn"],
        metadata={
            "help": "rnn, self_attention (a self-attention encoder under the RNN decoder) and/or transformer "
            "(self-attention in encoder and decoder), each with every attention type"
        },
    )
    checkpoints: list[str] = field(
        default_factory=list,
        metadata={
            "help": "NAME=DIR pairs: reuse these trained checkpoints instead of training, e.g. none=outputs/x or "
            "bahdanau-self_attention=outputs/y (NAME: the attention type, plus -self_attention or -transformer)"
        },
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


def model_name(attention_type: str, encoder_type: str) -> str:
    """The name of a compared model in the report and its file names: the attention type, plus the encoder type
    when that is not the RNN encoder (`bahdanau`, `bahdanau-self_attention`, `bahdanau-transformer`)."""
    return attention_type if encoder_type == "rnn" else f"{attention_type}-{encoder_type}"


def encoder_type_of(config: dict) -> str | None:
    """The entry of `ENCODER_TYPES` a saved config is: `"rnn"` (RNN layers only; configs saved before layer types
    existed), `"self_attention"` (self-attention encoder, RNN decoder) or `"transformer"` (self-attention only);
    None for any other mix."""
    encoder = set(config.get("encoder_layer_types") or ["rnn"])
    decoder = set(config.get("decoder_layer_types") or ["rnn"])
    if decoder == {"rnn"} and len(encoder) == 1:
        return "rnn" if encoder == {"rnn"} else "self_attention"
    return "transformer" if encoder == decoder == {"self_attention"} else None


def parse_checkpoints(items: Sequence[str], models: dict[str, tuple[str, str]]) -> dict[str, Path]:
    """`NAME=DIR` strings -> {name: folder}, each name one of `models` (name -> (attention type, encoder type)) at
    most once, each folder a saved model (with `config.json`) of that attention type and encoder type."""
    checkpoints = {}
    for item in items:
        name, separator, folder = item.partition("=")
        if not separator or not name or not folder:
            raise ValueError(f"--checkpoints {item!r}: expected NAME=DIR, e.g. bahdanau=outputs/table_bahdanau")
        if name not in models:
            raise ValueError(
                f"--checkpoints {item!r}: {name!r} is not among the compared models ({', '.join(models)}; set them "
                "with --attention_types and --encoder_types)"
            )
        if name in checkpoints:
            raise ValueError(f"--checkpoints: {name!r} is given twice ({checkpoints[name]} and {folder})")
        path = Path(folder)
        if not (path / "config.json").is_file():
            problem = "no such folder" if not path.is_dir() else "no config.json in it (not a saved model)"
            raise FileNotFoundError(f"--checkpoints {item!r}: {path}: {problem}")
        saved = json.loads((path / "config.json").read_text())
        attention_type, encoder_type = models[name]
        if saved.get("attention_type") != attention_type:
            raise ValueError(
                f"--checkpoints {item!r}: {path} holds a model with attention_type {saved.get('attention_type')!r}"
            )
        if encoder_type_of(saved) != encoder_type:
            raise ValueError(
                f"--checkpoints {item!r}: {path} holds a model with encoder_layer_types "
                f"{saved.get('encoder_layer_types')} and decoder_layer_types {saved.get('decoder_layer_types')}, "
                f"not a {encoder_type} model"
            )
        checkpoints[name] = path
    return checkpoints


def compared_models(arguments: ComparisonArguments) -> dict[str, tuple[str, str]]:
    """{name: (attention type, encoder type)} of every model the comparison covers, encoder types outermost."""
    return {
        model_name(attention_type, encoder_type): (attention_type, encoder_type)
        for encoder_type in arguments.encoder_types
        for attention_type in arguments.attention_types
    }


def _check_arguments(arguments: ComparisonArguments, model_args) -> None:
    unknown = [name for name in arguments.attention_types if name not in ATTENTION_TYPES]
    if unknown or not arguments.attention_types:
        raise ValueError(f"--attention_types {unknown or '(none)'}: choose from {', '.join(ATTENTION_TYPES)}")
    if len(set(arguments.attention_types)) != len(arguments.attention_types):
        raise ValueError(f"--attention_types {arguments.attention_types}: a type is listed twice")
    unknown = [name for name in arguments.encoder_types if name not in ENCODER_TYPES]
    if unknown or not arguments.encoder_types or len(set(arguments.encoder_types)) != len(arguments.encoder_types):
        raise ValueError(
            f"--encoder_types {arguments.encoder_types}: choose each of {', '.join(ENCODER_TYPES)} at most once"
        )
    if "transformer" in arguments.encoder_types and "none" in arguments.attention_types:
        raise ValueError(
            "--encoder_types transformer with attention type none: a decoder self-attention layer reads the source "
            "only through its cross attention; compare none with the rnn and self_attention types"
        )
    if (
        "self_attention" in arguments.encoder_types
        and "none" in arguments.attention_types
        and model_args.self_attention_type is None
    ):
        raise ValueError(
            "--encoder_types self_attention with attention type none: name the self-attention layers' alignment "
            "function with --self_attention_type (none has no scores)"
        )
    if arguments.plot_metric not in ("bleu", "chrf", "exact_match"):
        raise ValueError(f"--plot_metric {arguments.plot_metric!r}: choose bleu, chrf or exact_match")
    if arguments.min_bucket_size < 1:
        raise ValueError(f"--min_bucket_size {arguments.min_bucket_size}: must be >= 1")


def check_trained_split(checkpoint: Path, data_args) -> None:
    """Refuse a reused checkpoint whose run record names other split settings than `data_args`: it may have been
    trained on the test pairs it would be scored on (or, without a record, nothing says it was not).

    Raises:
        ValueError: naming the checkpoint, the setting and both values.
    """
    record = read_training_record(checkpoint)
    trained = (record or {}).get("data_arguments")
    if not isinstance(trained, dict):
        raise ValueError(
            f"{checkpoint}: no training_run.json with data_arguments, so the pairs it was trained on are unknown; "
            "scoring it on this test split could score training pairs (reuse checkpoints of the training scripts)"
        )
    for name in SPLIT_ARGUMENTS:
        if name in trained and trained[name] != getattr(data_args, name):
            raise ValueError(
                f"{checkpoint} was trained with {name}={trained[name]!r}, this comparison splits with "
                f"{name}={getattr(data_args, name)!r}: its training pairs may hold this test split; compare it "
                "with the settings it was trained with"
            )


def _heatmap_sources(arguments: ComparisonArguments, sources: list[str], groups: list[list[int]]) -> list[str]:
    if arguments.heatmap_sentences:
        return list(arguments.heatmap_sentences)
    count = min(arguments.heatmap_count, len(groups))
    if count <= 0:
        return []
    # The first test sentence of buckets spread from the shortest to the longest.
    picks = [round(index * (len(groups) - 1) / max(count - 1, 1)) for index in range(count)]
    return [sources[groups[bucket][0]] for bucket in dict.fromkeys(picks) if groups[bucket]]


def _train(name: str, attention_type: str, encoder_type: str, model_args, data_args, training_args) -> Path:
    output_dir = Path(training_args.output_dir) / name
    logger.info("training %s into %s", name, output_dir)
    self_attention = ["self_attention"] * model_args.num_hidden_layers
    encoder_layer_types = None if encoder_type == "rnn" else self_attention
    decoder_layer_types = self_attention if encoder_type == "transformer" else None
    layer_types = {"encoder_layer_types": encoder_layer_types, "decoder_layer_types": decoder_layer_types}
    run_training(
        dataclasses.replace(model_args, attention_type=attention_type, **layer_types),
        data_args,
        dataclasses.replace(training_args, output_dir=str(output_dir)),
    )
    return output_dir


def evaluate_checkpoint(
    name: str,
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
    """Scores of one checkpoint on the test split (overall and by length), its heatmaps and alignment accuracy;
    `name` names its files."""
    loaded = load_checkpoint(checkpoint)
    model, tokenizer = loaded.model, loaded.tokenizer
    attention_type = model.config.attention_type
    hypotheses = translate(model, tokenizer, sources, batch_size=batch_size)
    write_translations(heatmap_dir.parent / f"translations_{name}.jsonl", sources, references, hypotheses)
    result = {
        "checkpoint": str(checkpoint),
        "attention_type": attention_type,
        "encoder_layer_types": model.config.encoder_layer_types,
        "num_beams": model.generation_config.num_beams,
        "parameters": model.num_parameters(),
        "num_attention_heads": model.config.num_attention_heads if attention_type != "none" else 0,
        "overall": corpus_scores(hypotheses, references, metric, signatures=True),
        "by_length": scores_by_length(lengths, hypotheses, references, buckets, metric, arguments.min_bucket_size),
    }
    result["heatmaps"] = draw_heatmaps(
        model,
        tokenizer,
        heatmap_sources,
        heatmap_dir,
        prefix=f"{name}_",
        layer=arguments.heatmap_layer,
        title_prefix=f"{name}: ",
    )
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
    """Train (or reuse) one model per attention type and encoder type (`compared_models`) with the same preset, score
    each on the test split by source length, draw heatmaps of the same sentences, and write into
    `training_args.output_dir`:

    - `length_comparison.json`: buckets with counts, and per model the overall and per-bucket BLEU / chrF / exact
      match, the heatmap sentences and their translations, and (tasks with a gold alignment) alignment accuracy;
    - `{plot_metric}_by_length.png` (one line per model), `alignment_by_length.png` (gold-alignment tasks);
    - `heatmaps/{name}_{k}.png`: one panel per head and their average (no heatmap for `none`), and the encoder
      self-attention beside it for self-attention encoders.

    Models trained here go to `output_dir/{name}`. Bad arguments (unknown types, missing checkpoints, buckets with
    fewer than `min_bucket_size` test sentences) fail before any training. Returns the report.
    """
    _check_arguments(arguments, model_args)
    if training_args.push_to_hub:
        raise ValueError("--push_to_hub: the comparison trains several models; push one with scripts/push_to_hub.py")
    compared = compared_models(arguments)
    checkpoints = parse_checkpoints(arguments.checkpoints, compared)
    for checkpoint in checkpoints.values():  # before any training: a refusal costs nothing
        check_trained_split(checkpoint, data_args)
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
    for name, (attention_type, encoder_type) in compared.items():
        trained = name not in checkpoints
        if trained:
            checkpoint = _train(name, attention_type, encoder_type, model_args, data_args, training_args)
        else:
            checkpoint = checkpoints[name]
        logger.info("evaluating %s (%s)", name, checkpoint)
        result = evaluate_checkpoint(
            name,
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
        models[name] = {"trained_here": trained, **result}

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
    "ENCODER_TYPES",
    "REPORT_NAME",
    "ComparisonArguments",
    "check_trained_split",
    "compare_attention_types",
    "compared_models",
    "encoder_type_of",
    "evaluate_checkpoint",
    "model_name",
    "parse_checkpoints",
    "report_tables",
]
