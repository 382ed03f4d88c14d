"""Training a translation model with the Hugging Face `Seq2SeqTrainer`: the code behind `scripts/train.py`.

`run_training` does the whole job: load and split the corpus, train a joint BPE tokenizer (or take the one of
`--init_from`), build the model, tokenize with `datasets.map`, train with validation BLEU (beam search) choosing the
best checkpoint, translate the test split, and leave a Hub-ready folder: config with `auto_map`, weights, the model's
code files, tokenizer, generation config, metrics JSON, test translations and attention heatmaps.
"""

import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    EarlyStoppingCallback,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    set_seed,
)

from .configuration_seq2seq_attention import Seq2SeqAttentionConfig
from .data import load_translation_corpus, tokenize_translations
from .metrics import load_translation_metric
from .modeling_seq2seq_attention import Seq2SeqAttentionForConditionalGeneration
from .tokenization import corpus_texts, train_tokenizer
from .translation import align, plot_alignment

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """The model to train: a new one (architecture below) or `init_from` an existing checkpoint."""

    init_from: str | None = field(
        default=None, metadata={"help": "checkpoint folder or Hub id to fine-tune (its tokenizer is reused)"}
    )
    attention_type: str = field(default="bahdanau", metadata={"help": "bahdanau, scaled_dot, dot, general or none"})
    rnn_type: str = field(default="gru", metadata={"help": "gru or lstm"})
    hidden_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    dropout: float = 0.2
    attention_dropout: float = 0.0
    initializer_range: float = 0.1
    vocab_size: int = field(default=8000, metadata={"help": "size of the BPE vocabulary trained from scratch"})


@dataclass
class DataArguments:
    """The corpus, its splits and length limits, and what to produce after training."""

    corpus: str = field(
        default="ding",
        metadata={"help": "ding (Debian trans-de-en), reversal, numbers, a .jsonl/.tsv/.csv file or folder, a Hub id"},
    )
    src_lang: str = "de"
    tgt_lang: str = "en"
    validation_size: int = 500
    test_size: int = 1000
    split_seed: int = field(default=0, metadata={"help": "seed of the train/validation/test split"})
    synthetic_size: int = field(default=20000, metadata={"help": "training pairs of a synthetic corpus"})
    max_source_length: int = 64
    max_target_length: int = 64
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    early_stopping_patience: int = field(default=0, metadata={"help": "evaluations without improvement; 0 = off"})
    plot_examples: int = field(default=3, metadata={"help": "test sentences whose attention is plotted"})


def build_model(model_args: ModelArguments, tokenizer) -> Seq2SeqAttentionForConditionalGeneration:
    config = Seq2SeqAttentionConfig(
        vocab_size=len(tokenizer),
        hidden_size=model_args.hidden_size,
        num_hidden_layers=model_args.num_hidden_layers,
        num_attention_heads=model_args.num_attention_heads,
        attention_type=model_args.attention_type,
        rnn_type=model_args.rnn_type,
        dropout=model_args.dropout,
        attention_dropout=model_args.attention_dropout,
        initializer_range=model_args.initializer_range,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
    )
    return Seq2SeqAttentionForConditionalGeneration(config)


def build_compute_metrics(tokenizer, metric):
    """`compute_metrics` for `Seq2SeqTrainer(predict_with_generate=True)`: sacreBLEU BLEU and chrF of the decoded
    generations against the decoded labels (-100, the ignored label, becomes padding before decoding)."""

    def compute_metrics(eval_prediction) -> dict[str, float]:
        predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        # The Trainer pads generations of different lengths across batches with -100 as well.
        predictions = np.where(predictions < 0, tokenizer.pad_token_id, predictions)
        labels = np.where(labels < 0, tokenizer.pad_token_id, labels)
        hypotheses = tokenizer.batch_decode(predictions, skip_special_tokens=True)
        references = tokenizer.batch_decode(labels, skip_special_tokens=True)
        scores = metric.compute(predictions=hypotheses, references=[[reference] for reference in references])
        lengths = (predictions != tokenizer.pad_token_id).sum(axis=1)
        return {"bleu": scores["bleu"], "chrf": scores["chrf"], "gen_len": float(lengths.mean())}

    return compute_metrics


def _check_report_to(training_args: Seq2SeqTrainingArguments) -> None:
    if "tensorboard" in training_args.report_to and importlib.util.find_spec("tensorboard") is None:
        logger.warning("report_to includes tensorboard, which is not installed: logging to the console only")
        training_args.report_to = [name for name in training_args.report_to if name != "tensorboard"]


def _load_tokenizer_and_model(model_args: ModelArguments, training_args, train_split, data_args):
    if training_args.resume_from_checkpoint:
        # The checkpoint's own tokenizer: a retrained one might differ from the ids the weights were trained on.
        tokenizer = AutoTokenizer.from_pretrained(training_args.resume_from_checkpoint)
        return tokenizer, build_model(model_args, tokenizer)
    if model_args.init_from:
        tokenizer = AutoTokenizer.from_pretrained(model_args.init_from)
        return tokenizer, AutoModelForSeq2SeqLM.from_pretrained(model_args.init_from)
    tokenizer = train_tokenizer(
        corpus_texts(train_split, data_args.src_lang, data_args.tgt_lang),
        vocab_size=model_args.vocab_size,
        model_max_length=data_args.max_source_length,
    )
    return tokenizer, build_model(model_args, tokenizer)


def run_training(
    model_args: ModelArguments, data_args: DataArguments, training_args: Seq2SeqTrainingArguments
) -> dict[str, float]:
    """Train, evaluate on the test split, save everything to `training_args.output_dir`; returns the test metrics."""
    set_seed(training_args.seed)
    _check_report_to(training_args)
    corpus = load_translation_corpus(
        data_args.corpus,
        data_args.src_lang,
        data_args.tgt_lang,
        validation_size=data_args.validation_size,
        test_size=data_args.test_size,
        seed=data_args.split_seed,
        synthetic_size=data_args.synthetic_size,
    )
    if data_args.max_train_samples is not None:
        corpus["train"] = corpus["train"].select(range(min(data_args.max_train_samples, len(corpus["train"]))))
    if data_args.max_eval_samples is not None:
        corpus["validation"] = corpus["validation"].select(
            range(min(data_args.max_eval_samples, len(corpus["validation"])))
        )
    logger.info("corpus %s: %s", data_args.corpus, {name: len(split) for name, split in corpus.items()})

    tokenizer, model = _load_tokenizer_and_model(model_args, training_args, corpus["train"], data_args)
    model.generation_config.num_beams = training_args.generation_num_beams or model.generation_config.num_beams
    model.generation_config.max_length = training_args.generation_max_length or data_args.max_target_length + 1
    tokenized = tokenize_translations(
        corpus,
        tokenizer,
        data_args.src_lang,
        data_args.tgt_lang,
        data_args.max_source_length,
        data_args.max_target_length,
    )

    callbacks = []
    if data_args.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience))
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        compute_metrics=build_compute_metrics(tokenizer, load_translation_metric()),
        callbacks=callbacks,
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    return evaluate_test_split(trainer, corpus["test"], tokenized["test"], data_args)


def evaluate_test_split(trainer: Seq2SeqTrainer, test_text, test_tokenized, data_args: DataArguments) -> dict:
    """Beam-search the test split; write `test_results.json`, `test_translations.jsonl` and attention heatmaps.

    Test BLEU and chrF are scored against the corpus's own reference strings (not decoded token ids, which would
    lose characters the tokenizer maps to <unk>), and come with sacreBLEU's signatures.
    """
    output_dir = Path(trainer.args.output_dir)
    tokenizer, model = trainer.processing_class, trainer.model
    prediction = trainer.predict(test_tokenized, metric_key_prefix="test")
    generated = np.where(prediction.predictions < 0, tokenizer.pad_token_id, prediction.predictions)
    hypotheses = tokenizer.batch_decode(generated, skip_special_tokens=True)
    references = [pair[data_args.tgt_lang] for pair in test_text["translation"]]
    scores = load_translation_metric().compute(predictions=hypotheses, references=references)
    metrics = dict(prediction.metrics)
    metrics.update(
        test_bleu=scores["bleu"],
        test_chrf=scores["chrf"],
        test_bleu_signature=scores["bleu_signature"],
        test_chrf_signature=scores["chrf_signature"],
        test_samples=len(hypotheses),
    )
    trainer.log_metrics("test", metrics)
    if not trainer.is_world_process_zero():
        return metrics
    trainer.save_metrics("test", metrics)
    with (output_dir / "test_translations.jsonl").open("w", encoding="utf-8") as lines:
        for pair, hypothesis in zip(test_text["translation"], hypotheses, strict=True):
            row = {"source": pair[data_args.src_lang], "reference": pair[data_args.tgt_lang], "hypothesis": hypothesis}
            lines.write(json.dumps(row, ensure_ascii=False) + "\n")
    if model.config.attention_type != "none":
        # The shortest test sentences of 5+ words: readable heatmaps that can still show reordering.
        sources = [pair[data_args.src_lang] for pair in test_text["translation"]]
        examples = sorted((source for source in sources if len(source.split()) >= 5), key=len)
        for index, source in enumerate(examples[: data_args.plot_examples]):
            alignment = align(model, tokenizer, source)
            title = f"{source}\n-> {alignment.translation}"
            path = plot_alignment(alignment, output_dir / f"attention_{index}.png", title=title)
            logger.info("attention heatmap: %s", path)
    return metrics


__all__ = ["DataArguments", "ModelArguments", "build_compute_metrics", "build_model", "run_training"]
