"""Evaluation: decode generations, score them with sacreBLEU, write translations, draw attention heatmaps.

One implementation for every caller: the Trainer's `compute_metrics` (`build_compute_metrics`), the Accelerate
loop's validation (`evaluate_generation`), the test split of both loops (`evaluate_test_split`) and the attention
comparison (`corpus_scores`, `write_translations`, `draw_heatmaps`).
"""

import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .arguments import SPLIT_ARGUMENTS, DataArguments
from .beam_search import beam_search_dropping_finished
from .metrics import load_translation_metric
from .plotting import LEARNING_CURVE_KEYS, plot_learning_curves
from .translation import align, plot_alignment, plot_self_attentions, sentence_list, translate

logger = logging.getLogger(__name__)


def generated_lengths(
    token_ids,
    pad_token_id: int | None,
    decoder_start_token_id: int | None,
    eos_token_id: int | list[int] | None = None,
) -> np.ndarray:
    """The length in tokens of each generated sequence: its tokens up to and including the first EOS, without the
    leading decoder start token and without padding (`pad_token_id`, or any negative id such as the Trainer's -100).

    Args:
        token_ids: `[batch, length]` ids as `generate` returns them (numpy array, torch tensor or nested lists).
        pad_token_id: the padding id (`None`: negative ids only).
        decoder_start_token_id: the decoder's first input, not counted when it leads a sequence (`None`: none).
        eos_token_id: the end-of-sequence id or ids; what follows the first one is not counted (`None`: count every
            non-padding token).

    Returns:
        `[batch]` integer lengths.
    """
    if isinstance(token_ids, torch.Tensor):
        token_ids = token_ids.detach().cpu().numpy()
    ids = np.asarray(token_ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"token_ids: expected [batch, length] integer ids, got shape {ids.shape} of {ids.dtype}")
    counted = ids >= 0
    if pad_token_id is not None:
        counted &= ids != pad_token_id
    if eos_token_id is not None:
        is_eos = np.isin(ids, eos_token_id)
        # The first EOS counts even where it is also the padding id; everything after it is padding.
        counted = (counted | is_eos) & (np.cumsum(is_eos, axis=1) - is_eos == 0)
    if decoder_start_token_id is not None and ids.shape[1] > 0:
        counted[:, 0] &= ids[:, 0] != decoder_start_token_id
    return counted.sum(axis=1)


def decode_generations(
    tokenizer, generated, labels, decoder_start_token_id: int | None, eos_token_id: int | list[int] | None
) -> tuple[list[str], list[str], list[int]]:
    """Hypotheses, references and generated lengths (`generated_lengths`) of a batch of generations.

    Args:
        generated: `[batch, gen_len]` ids from `generate` (numpy array or tensor); negative ids are padding.
        labels: `[batch, tgt_len]` reference ids; -100 (the ignored label) and other negative ids are padding.
    """
    lengths = generated_lengths(generated, tokenizer.pad_token_id, decoder_start_token_id, eos_token_id)
    generated, labels = (
        np.asarray(ids.detach().cpu() if torch.is_tensor(ids) else ids) for ids in (generated, labels)
    )
    # The Trainer pads generations of different lengths across batches with -100 as well.
    generated = np.where(generated < 0, tokenizer.pad_token_id, generated)
    labels = np.where(labels < 0, tokenizer.pad_token_id, labels)
    hypotheses = tokenizer.batch_decode(generated, skip_special_tokens=True)
    references = tokenizer.batch_decode(labels, skip_special_tokens=True)
    return hypotheses, references, lengths.tolist()


def score_generations(metric, hypotheses: Sequence[str], references: Sequence[str], lengths: Sequence[int]) -> dict:
    """`bleu` and `chrf` (sacreBLEU, one reference each) and `gen_len`, the mean generated length in tokens."""
    scores = metric.compute(predictions=list(hypotheses), references=[[reference] for reference in references])
    return {"bleu": scores["bleu"], "chrf": scores["chrf"], "gen_len": float(np.mean(lengths)) if lengths else 0.0}


def build_compute_metrics(tokenizer, metric, decoder_start_token_id: int | None = None):
    """`compute_metrics` for `Seq2SeqTrainer(predict_with_generate=True)`: `score_generations` of the decoded
    generations against the decoded labels (the decoder start token defaults to the tokenizer's BOS, as
    `loading.build_model` sets it)."""
    if decoder_start_token_id is None:
        decoder_start_token_id = tokenizer.bos_token_id

    def compute_metrics(eval_prediction) -> dict[str, float]:
        predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        decoded = decode_generations(tokenizer, predictions, labels, decoder_start_token_id, tokenizer.eos_token_id)
        return score_generations(metric, *decoded)

    return compute_metrics


def evaluate_generation(accelerator, model, dataloader, tokenizer, metric) -> dict[str, float]:
    """Validation BLEU / chrF / gen_len of `generate` (the model's generation config, finished sentences dropped from
    the batch as the Trainer's evaluation does) over every process's share.

    `gather_for_metrics` drops the samples Accelerate repeats to give every process as many batches, so each
    validation pair counts once whatever the number of processes.
    """
    model.eval()
    generator = accelerator.unwrap_model(model)
    config = generator.generation_config
    hypotheses, references, lengths = [], [], []
    for batch in dataloader:
        with torch.no_grad():
            generated = generator.generate(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                custom_generate=beam_search_dropping_finished,
            )
        generated = accelerator.pad_across_processes(generated, dim=1, pad_index=tokenizer.pad_token_id)
        labels = accelerator.pad_across_processes(batch["labels"], dim=1, pad_index=-100)
        generated, labels = accelerator.gather_for_metrics((generated, labels))
        decoded = decode_generations(tokenizer, generated, labels, config.decoder_start_token_id, config.eos_token_id)
        for collected, batch_values in zip((hypotheses, references, lengths), decoded, strict=True):
            collected += batch_values
    model.train()
    scores = score_generations(metric, hypotheses, references, lengths)
    return {f"eval_{name}": value for name, value in scores.items()} | {"eval_samples": len(hypotheses)}


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Share of hypotheses equal to their reference, ignoring whitespace at the ends and between words."""
    hypotheses, references = sentence_list(hypotheses, "hypotheses"), sentence_list(references, "references")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not hypotheses:
        raise ValueError("exact match of no sentences")
    matches = sum(hyp.split() == ref.split() for hyp, ref in zip(hypotheses, references, strict=True))
    return matches / len(hypotheses)


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str], metric=None, signatures: bool = False) -> dict:
    """Corpus BLEU and chrF (sacreBLEU, via `load_translation_metric()` unless a `metric` is given), exact match;
    with `signatures`, sacreBLEU's signatures of the two scores too."""
    hypotheses, references = sentence_list(hypotheses, "hypotheses"), sentence_list(references, "references")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    metric = metric or load_translation_metric()
    scores = metric.compute(predictions=hypotheses, references=references)
    result = {
        "count": len(hypotheses),
        "bleu": scores["bleu"],
        "chrf": scores["chrf"],
        "exact_match": exact_match(hypotheses, references),
    }
    if signatures:
        result.update(bleu_signature=scores["bleu_signature"], chrf_signature=scores["chrf_signature"])
    return result


def write_translations(path: str | Path, sources: Sequence[str], references: Sequence[str], hypotheses: Sequence[str]):
    """One JSON line per pair: `{"source", "reference", "hypothesis"}`, UTF-8 as is."""
    sources, references = sentence_list(sources, "sources"), sentence_list(references, "references")
    hypotheses = sentence_list(hypotheses, "hypotheses")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as lines:
        for source, reference, hypothesis in zip(sources, references, hypotheses, strict=True):
            row = {"source": source, "reference": reference, "hypothesis": hypothesis}
            lines.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def draw_heatmaps(
    model, tokenizer, sentences: Sequence[str], folder: str | Path, prefix: str, layer: int = -1, title_prefix=""
) -> list[dict]:
    """Translate each sentence and draw its cross attention (one panel per head and their average) into
    `folder/{prefix}{index}.png`, and each self-attention layer k of the encoder or decoder into
    `folder/{prefix}{index}_{encoder|decoder}_self_attention_{k}.png`; returns `{"sentence", "translation", "path",
    "self_attention_paths"}` per sentence (`path` None for `attention_type="none"`, which has no cross attention)."""
    sentences = sentence_list(sentences)
    has_self_attention = "self_attention" in model.config.encoder_layer_types + model.config.decoder_layer_types
    heatmaps = []
    for index, sentence in enumerate(sentences):
        if model.config.attention_type == "none" and not has_self_attention:
            translation = translate(model, tokenizer, [sentence])[0]
            heatmaps.append(
                {"sentence": sentence, "translation": translation, "path": None, "self_attention_paths": []}
            )
            continue
        alignment = align(model, tokenizer, sentence)
        title = f"{title_prefix}{sentence}\n-> {alignment.translation}"
        path = Path(folder) / f"{prefix}{index}.png"
        cross_path = None if alignment.weights is None else str(plot_alignment(alignment, path, layer, title))
        self_attention_paths = [str(figure) for figure in plot_self_attentions(alignment, path, title)]
        heatmaps.append(
            {
                "sentence": sentence,
                "translation": alignment.translation,
                "path": cross_path,
                "self_attention_paths": self_attention_paths,
            }
        )
    return heatmaps


def draw_learning_curves(log_history: list[dict], output_dir: str | Path) -> Path | None:
    """Draw a run's learning curves (`plot_learning_curves`) into `output_dir/learning_curves.png`; None, with a log
    line, for a run that logged no loss and no validation (e.g. fewer steps than `logging_steps`, no evaluation)."""
    if not any(key in record for record in log_history for key in LEARNING_CURVE_KEYS):
        logger.info("no learning curves: the run logged none of %s", ", ".join(LEARNING_CURVE_KEYS))
        return None
    path = plot_learning_curves(log_history, Path(output_dir) / "learning_curves.png", title=str(output_dir))
    logger.info("learning curves: %s", path)
    return path


def evaluate_test_split(
    model, tokenizer, test_text, data_args: DataArguments, output_dir: str | Path, batch_size: int
) -> dict:
    """Beam-search the test split; write `test_results.json`, `test_translations.jsonl` and attention heatmaps.

    Translation goes through `translate` rather than `Trainer.predict`: with `train_sampling_strategy=group_by_length`
    the Trainer also length-groups evaluation batches, so `predict` returns generations in a permuted order (fine for
    validation BLEU, which pairs them with labels in the same order; wrong for writing them beside their sources).
    BLEU and chrF are scored against the corpus's own reference strings (decoded token ids would lose characters the
    tokenizer maps to <unk>) and come with sacreBLEU's signatures.
    """
    output_dir = Path(output_dir)
    sources = [pair[data_args.src_lang] for pair in test_text["translation"]]
    references = [pair[data_args.tgt_lang] for pair in test_text["translation"]]
    start = time.perf_counter()
    hypotheses = translate(model, tokenizer, sources, batch_size=batch_size)
    runtime = time.perf_counter() - start
    scores = corpus_scores(hypotheses, references, signatures=True)
    metrics = {
        "test_bleu": scores["bleu"],
        "test_chrf": scores["chrf"],
        "test_bleu_signature": scores["bleu_signature"],
        "test_chrf_signature": scores["chrf_signature"],
        "test_samples": len(hypotheses),
        # The beams `generate` used: the config's, else its default (greedy).
        "test_num_beams": model.generation_config.num_beams or 1,
        "test_runtime": round(runtime, 2),
    }
    with (output_dir / "test_results.json").open("w") as file:
        json.dump(metrics, file, indent=2)
    write_translations(output_dir / "test_translations.jsonl", sources, references, hypotheses)
    if model.config.attention_type != "none":
        # The shortest test sentences of 5+ words: readable heatmaps that can still show reordering.
        examples = sorted((source for source in sources if len(source.split()) >= 5), key=len)
        for heatmap in draw_heatmaps(model, tokenizer, examples[: data_args.plot_examples], output_dir, "attention_"):
            logger.info("attention heatmap: %s", heatmap["path"])
    return metrics


def trained_split_arguments(checkpoint, data_args: DataArguments, given: set[str]) -> DataArguments:
    """`data_args` with the split settings (`SPLIT_ARGUMENTS`) of the run that trained `checkpoint` (a `Checkpoint`
    of `load_checkpoint`), so that its validation and test splits are the ones it was trained beside.

    Args:
        given: the argument names set explicitly (by a preset or the command line); any of them that differs from
            the run's value is refused, since it would score another split, which may hold training pairs.

    Raises:
        ValueError: the checkpoint has no run record, or a given split setting differs from it; both named.
    """
    record = checkpoint.training_record
    if record is None or not isinstance(record.get("data_arguments"), dict):
        raise ValueError(
            f"{checkpoint.path}: no training_run.json with data_arguments, so the pairs it was trained on are "
            "unknown; scoring a split that may hold them would inflate the score (use a checkpoint written by "
            "the training scripts)"
        )
    trained = record["data_arguments"]
    values = {}
    for name in SPLIT_ARGUMENTS:
        if name not in trained:
            continue
        if name in given and getattr(data_args, name) != trained[name]:
            raise ValueError(
                f"--{name} {getattr(data_args, name)}: {checkpoint.path} was trained with {name}={trained[name]!r} "
                "(training_run.json); another value would score a split that may overlap its training pairs: "
                f"leave --{name} out or give {trained[name]}"
            )
        values[name] = trained[name]
    return dataclasses.replace(data_args, **values)


def check_decoding_grid(beam_sizes: Sequence[int], length_penalties: Sequence[float]) -> None:
    """Refuse an empty grid, a beam size below 1, and a length penalty that is not a finite positive number
    (NaN saved into a generation config breaks every later translation).

    Raises:
        ValueError: naming the value and what is allowed.
    """
    if not beam_sizes or not length_penalties:
        raise ValueError("--beam_sizes and --length_penalties each need at least one value")
    for beams in beam_sizes:
        if isinstance(beams, bool) or not isinstance(beams, int) or beams < 1:
            raise ValueError(f"--beam_sizes {beams}: every beam size must be a whole number >= 1")
    for penalty in length_penalties:
        if isinstance(penalty, bool) or not isinstance(penalty, int | float) or not math.isfinite(penalty):
            raise ValueError(f"--length_penalties {penalty}: every length penalty must be a finite number")
        if penalty <= 0:
            raise ValueError(f"--length_penalties {penalty}: every length penalty must be > 0")


def tune_decoding(
    model,
    tokenizer,
    validation_text,
    data_args: DataArguments,
    beam_sizes: Sequence[int],
    length_penalties: Sequence[float],
    batch_size: int,
) -> list[dict]:
    """Translate the validation split with every beam size and length penalty; one record per setting
    (`num_beams`, `length_penalty`, `bleu`, `chrf`, `seconds`), best BLEU first.

    Decoding is chosen on validation, never on test. The length penalty divides a hypothesis's log-probability by
    its length to that power (transformers' beam search), so it has no effect with one beam: greedy is tried once.

    Raises:
        ValueError: see `check_decoding_grid`, before anything is translated.
    """
    check_decoding_grid(beam_sizes, length_penalties)
    sources = [pair[data_args.src_lang] for pair in validation_text["translation"]]
    references = [pair[data_args.tgt_lang] for pair in validation_text["translation"]]
    settings = [(beams, penalty) for beams in beam_sizes for penalty in length_penalties if beams > 1]
    if 1 in beam_sizes:
        settings.insert(0, (1, 1.0))
    records = []
    for beams, penalty in settings:
        start = time.perf_counter()
        hypotheses = translate(
            model, tokenizer, sources, batch_size=batch_size, num_beams=beams, length_penalty=penalty
        )
        seconds = time.perf_counter() - start
        scores = corpus_scores(hypotheses, references)
        records.append({"num_beams": beams, "length_penalty": penalty, "bleu": scores["bleu"],
                        "chrf": scores["chrf"], "seconds": round(seconds, 2)})  # fmt: skip
        logger.info("decoding %s", records[-1])
    return sorted(records, key=lambda record: -record["bleu"])


__all__ = [
    "build_compute_metrics",
    "check_decoding_grid",
    "corpus_scores",
    "decode_generations",
    "draw_heatmaps",
    "draw_learning_curves",
    "evaluate_generation",
    "evaluate_test_split",
    "exact_match",
    "generated_lengths",
    "score_generations",
    "trained_split_arguments",
    "tune_decoding",
    "write_translations",
]
