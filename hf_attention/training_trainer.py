"""Training a translation model with the Hugging Face `Seq2SeqTrainer`: the code behind `scripts/train.py`.

`run_training` does the whole job: load and split the corpus, train a joint BPE tokenizer (or take the one of
`--init_from`), build the model, tokenize with `datasets.map`, train with validation BLEU (beam search) choosing the
best checkpoint, translate the test split, and leave a Hub-ready folder: config with `auto_map`, weights, the model's
code files, tokenizer, generation config, metrics JSON, test translations and attention heatmaps.
"""

import contextlib
import copy
import dataclasses
import importlib.util
import json
import logging
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers
import transformers.trainer
from torch.utils.data import Sampler
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    DataCollatorForSeq2Seq,
    EarlyStoppingCallback,
    GenerationConfig,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    set_seed,
)
from transformers.trainer_pt_utils import get_length_grouped_indices
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, HubStrategy

from .configuration_seq2seq_attention import Seq2SeqAttentionConfig
from .data import load_translation_corpus, tokenize_translations
from .hub import UPLOAD_PATTERNS, build_model_card
from .metrics import load_translation_metric
from .modeling_seq2seq_attention import Seq2SeqAttentionForConditionalGeneration, cpu_has_bf16_kernels
from .tokenization import corpus_texts, load_tokenizer, train_tokenizer
from .translation import align, plot_alignment, translate

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """The model to train: a new one (architecture below) or `init_from` an existing checkpoint."""

    init_from: str | None = field(
        default=None, metadata={"help": "checkpoint folder or Hub id to fine-tune (its tokenizer is reused)"}
    )
    attention_type: str = field(default="bahdanau", metadata={"help": "bahdanau, scaled_dot, dot, general or none"})
    rnn_type: str = field(default="lstm", metadata={"help": "lstm or gru"})
    hidden_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    dropout: float = 0.2
    attention_dropout: float = 0.0
    initializer_range: float = 0.1
    compile_additive_attention: bool = field(
        default=False, metadata={"help": "bahdanau: fused torch.compile kernels (needs a C++ compiler on CPUs)"}
    )
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
    synthetic_min_length: int | None = field(
        default=None, metadata={"help": "shortest sequence (words) of the reversal task; default 4"}
    )
    synthetic_max_length: int | None = field(
        default=None, metadata={"help": "longest sequence (words) of the reversal task; default 12"}
    )
    max_source_length: int = 64
    max_target_length: int = 64
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    early_stopping_patience: int = field(default=0, metadata={"help": "evaluations without improvement; 0 = off"})
    plot_examples: int = field(default=3, metadata={"help": "test sentences whose attention is plotted"})


class ShuffledLengthGroupedSampler(Sampler):
    """Batches of similar length, visited in random order.

    transformers' `LengthGroupedSampler` sorts each megabatch (50 batches) by decreasing length and visits its
    batches in that order, so training sweeps from long to short sentences 50 batches at a time. Measured on the
    reversal preset (400 steps): exact match 0.855 instead of 1.00, the model having last seen short sequences
    stops early. This sampler keeps the same grouping (`get_length_grouped_indices`) and shuffles the batches; the
    longest stays first so that running out of memory happens at once.

    With a `seed`, the order of an epoch depends only on `(seed, epoch)` (see `set_epoch`): every process computes
    the same order without synchronising, and a resumed run sees the batches an uninterrupted one would. Without
    one it draws from `generator` (the global RNG when None), as transformers' samplers do.
    """

    def __init__(
        self,
        lengths: list[int],
        batch_size: int,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ):
        self.lengths, self.batch_size, self.generator, self.seed = lengths, batch_size, generator, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = self.generator
        if self.seed is not None:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
        indices = get_length_grouped_indices(self.lengths, self.batch_size, generator=generator)
        batches = [indices[start : start + self.batch_size] for start in range(0, len(indices), self.batch_size)]
        order = [0] + (torch.randperm(len(batches) - 1, generator=generator) + 1).tolist()
        return iter([index for batch in order for index in batches[batch]])


def pair_lengths(dataset) -> list[int]:
    """The length to group a tokenized pair by: the longer of source and target, since each side is padded."""
    return [
        max(len(source), len(target)) for source, target in zip(dataset["input_ids"], dataset["labels"], strict=True)
    ]


# Never uploaded by the Trainer's pushes: `training_args.bin` pickles the arguments, Hub token included; optimizer,
# scheduler, scaler and RNG states are for resuming on this machine. The weights are safetensors.
PICKLE_PATTERNS = ["*.bin", "*.pkl", "*.pickle", "*.pt", "*.pth"]
# What a push of the output folder may send: what `hf_attention.hub` shares, and the model card.
TRAINER_UPLOAD_PATTERNS = [*UPLOAD_PATTERNS, "README.md"]


class _ShareableUploads:
    """The Trainer's `HfApi`, whose `upload_folder` sends only the shareable files of a folder (no pickle)."""

    def __init__(self, api):
        self._api = api

    def __getattr__(self, name):
        return getattr(self._api, name)

    def upload_folder(self, *, allow_patterns=None, ignore_patterns=None, **kwargs):
        if isinstance(ignore_patterns, str):
            ignore_patterns = [ignore_patterns]
        return self._api.upload_folder(
            allow_patterns=allow_patterns or TRAINER_UPLOAD_PATTERNS,
            ignore_patterns=[*(ignore_patterns or []), *PICKLE_PATTERNS],
            **kwargs,
        )


@contextlib.contextmanager
def _shareable_trainer_uploads():
    """Within: the uploads `Trainer.push_to_hub` / `_push_from_checkpoint` make go through `_ShareableUploads`.

    Both call `transformers.trainer.hf_api()` with fixed `ignore_patterns` and no other hook; this swaps that
    function for the duration of the call.
    """
    shared_api = transformers.trainer.hf_api
    transformers.trainer.hf_api = lambda: _ShareableUploads(shared_api())
    try:
        yield
    finally:
        transformers.trainer.hf_api = shared_api


def check_hub_strategy(training_args: Seq2SeqTrainingArguments) -> None:
    """Refuse the hub strategies that upload whole checkpoint folders: to be resumable they must carry their
    pickles, and `training_args.bin` holds the Hub token."""
    strategy = HubStrategy(training_args.hub_strategy)
    if training_args.push_to_hub and strategy in (HubStrategy.CHECKPOINT, HubStrategy.ALL_CHECKPOINTS):
        raise ValueError(
            f"--hub_strategy {strategy.value!r} uploads resumable checkpoints, whose pickles hold the Hub token; "
            f"use {HubStrategy.EVERY_SAVE.value!r} or {HubStrategy.END.value!r}"
        )


class TranslationTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` whose `group_by_length` training batches come in random order (see the sampler), whose
    pushes upload this package's model card and never a pickle, and whose evaluation leaves the model's generation
    config as it was."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        check_hub_strategy(self.args)

    def push_to_hub(self, *args, **kwargs):
        with _shareable_trainer_uploads():
            return super().push_to_hub(*args, **kwargs)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        with _shareable_trainer_uploads():
            super()._push_from_checkpoint(checkpoint_folder)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        # Seq2SeqTrainer writes generate's global defaults (max_length=20, ...) into the model's generation config,
        # which every later checkpoint would then save: keep the config that was set.
        generation_config = copy.deepcopy(self.model.generation_config)
        try:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)
        finally:
            generation_config._from_model_config = self.model.generation_config._from_model_config
            self.model.generation_config = generation_config

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", **gen_kwargs):
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix, **self._length_limit(gen_kwargs))

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test", **gen_kwargs):
        return super().predict(test_dataset, ignore_keys, metric_key_prefix, **self._length_limit(gen_kwargs))

    def _length_limit(self, gen_kwargs: dict) -> dict:
        """`gen_kwargs` bounded by the generation config's `max_new_tokens` unless they bound it themselves: else the
        Trainer adds `generation_max_length` as `max_length`, and generate warns that both are set."""
        limit = self.model.generation_config.max_new_tokens
        if limit is None or gen_kwargs.get("max_length") is not None or gen_kwargs.get("max_new_tokens") is not None:
            return gen_kwargs
        return {**gen_kwargs, "max_new_tokens": limit}

    def create_model_card(self, **kwargs) -> None:
        """Write `README.md`: `hf_attention.hub.build_model_card` from the output folder's files (called by
        `push_to_hub` once the test split is scored), instead of the Trainer's generic card."""
        if not self.is_world_process_zero():
            return
        if not (Path(self.args.output_dir) / "test_results.json").is_file():
            # `save_model` pushes too (hub_strategy every_save), before the test split is scored: no card yet.
            logger.info("model card: written with the final push, once the test split is scored")
            return
        repo_id = self.hub_model_id or self.args.hub_model_id
        card = build_model_card(self.args.output_dir, repo_id=repo_id, revision=self.args.hub_revision or "main")
        card.save(Path(self.args.output_dir) / "README.md")

    def _get_train_sampler(self, train_dataset=None):
        train_dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or "labels" not in train_dataset.column_names:
            return super()._get_train_sampler(train_dataset)
        lengths = pair_lengths(train_dataset)
        # Group by the global batch: Accelerate deals each process its share of every global batch, so n processes
        # see the batches one process with the global batch size would.
        batch_size = self.args.train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        return ShuffledLengthGroupedSampler(lengths, batch_size)


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
        compile_additive_attention=model_args.compile_additive_attention,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
    )
    return Seq2SeqAttentionForConditionalGeneration(config)


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


def build_compute_metrics(tokenizer, metric, decoder_start_token_id: int | None = None):
    """`compute_metrics` for `Seq2SeqTrainer(predict_with_generate=True)`: sacreBLEU BLEU and chrF of the decoded
    generations against the decoded labels (-100, the ignored label, becomes padding before decoding), and `gen_len`,
    the mean of `generated_lengths` (the decoder start token defaults to the tokenizer's BOS, as `build_model` sets
    it)."""
    if decoder_start_token_id is None:
        decoder_start_token_id = tokenizer.bos_token_id

    def compute_metrics(eval_prediction) -> dict[str, float]:
        predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        lengths = generated_lengths(
            predictions, tokenizer.pad_token_id, decoder_start_token_id, tokenizer.eos_token_id
        )
        # The Trainer pads generations of different lengths across batches with -100 as well.
        predictions = np.where(predictions < 0, tokenizer.pad_token_id, predictions)
        labels = np.where(labels < 0, tokenizer.pad_token_id, labels)
        hypotheses = tokenizer.batch_decode(predictions, skip_special_tokens=True)
        references = tokenizer.batch_decode(labels, skip_special_tokens=True)
        scores = metric.compute(predictions=hypotheses, references=[[reference] for reference in references])
        return {"bleu": scores["bleu"], "chrf": scores["chrf"], "gen_len": float(lengths.mean())}

    return compute_metrics


def _check_report_to(training_args: Seq2SeqTrainingArguments) -> None:
    if "tensorboard" in training_args.report_to and importlib.util.find_spec("tensorboard") is None:
        logger.warning("report_to includes tensorboard, which is not installed: logging to the console only")
        training_args.report_to = [name for name in training_args.report_to if name != "tensorboard"]


def _load_tokenizer_and_model(model_args: ModelArguments, training_args, train_split, data_args):
    if training_args.resume_from_checkpoint:
        # The checkpoint's own tokenizer: a retrained one might differ from the ids the weights were trained on.
        # Its config too, whatever the model arguments say; the Trainer then loads the weights.
        tokenizer = load_tokenizer(training_args.resume_from_checkpoint)
        config = AutoConfig.from_pretrained(training_args.resume_from_checkpoint)
        return tokenizer, AutoModelForSeq2SeqLM.from_config(config)
    if model_args.init_from:
        tokenizer = load_tokenizer(model_args.init_from)
        overrides = {"compile_additive_attention": True} if model_args.compile_additive_attention else {}
        return tokenizer, AutoModelForSeq2SeqLM.from_pretrained(model_args.init_from, **overrides)
    tokenizer = train_tokenizer(
        corpus_texts(train_split, data_args.src_lang, data_args.tgt_lang),
        vocab_size=model_args.vocab_size,
        model_max_length=data_args.max_source_length,
    )
    return tokenizer, build_model(model_args, tokenizer)


def load_corpus(data_args: DataArguments):
    """The text splits (`DatasetDict` of `{"translation": {src, tgt}}` rows) that `data_args` names."""
    return load_translation_corpus(
        data_args.corpus,
        data_args.src_lang,
        data_args.tgt_lang,
        validation_size=data_args.validation_size,
        test_size=data_args.test_size,
        seed=data_args.split_seed,
        synthetic_size=data_args.synthetic_size,
        synthetic_min_length=data_args.synthetic_min_length,
        synthetic_max_length=data_args.synthetic_max_length,
    )


def set_generation_defaults(generation_config: GenerationConfig, training_args, data_args: DataArguments) -> None:
    """What the saved checkpoints generate with by default: `generation_num_beams` beams (else the config's, else
    greedy), and at most `max_target_length` new tokens, the longest target trained on (`generation_max_length`, a
    length with the decoder start token, when given).

    The limit is `max_new_tokens`, with `max_length` unset: a `generate(max_new_tokens=...)` call then overrides it
    without a warning that both are set.
    """
    generation_config.num_beams = training_args.generation_num_beams or generation_config.num_beams or 1
    if training_args.generation_max_length is not None:
        generation_config.max_new_tokens = training_args.generation_max_length - 1
    else:
        generation_config.max_new_tokens = data_args.max_target_length
    generation_config.max_length = None


def load_data_and_model(model_args: ModelArguments, data_args: DataArguments, training_args) -> tuple:
    """The corpus (text splits), its tokenized form, the tokenizer and the model, as both training scripts use them.

    Returns `(corpus, tokenized, tokenizer, model)`: `corpus` holds `{"translation": {src, tgt}}` rows per split,
    `tokenized` the `input_ids` / `attention_mask` / `labels` of each split within the length limits.
    """
    if training_args.generation_max_length is not None and training_args.generation_max_length < 2:
        raise ValueError(
            f"--generation_max_length {training_args.generation_max_length}: the length counts the decoder start "
            "token, so it must be at least 2"
        )
    corpus = load_corpus(data_args)
    if data_args.max_train_samples is not None:
        corpus["train"] = corpus["train"].select(range(min(data_args.max_train_samples, len(corpus["train"]))))
    if data_args.max_eval_samples is not None:
        corpus["validation"] = corpus["validation"].select(
            range(min(data_args.max_eval_samples, len(corpus["validation"])))
        )
    logger.info("corpus %s: %s", data_args.corpus, {name: len(split) for name, split in corpus.items()})

    tokenizer, model = _load_tokenizer_and_model(model_args, training_args, corpus["train"], data_args)
    set_generation_defaults(model.generation_config, training_args, data_args)
    tokenized = tokenize_translations(
        corpus,
        tokenizer,
        data_args.src_lang,
        data_args.tgt_lang,
        data_args.max_source_length,
        data_args.max_target_length,
    )
    return corpus, tokenized, tokenizer, model


def hardware_description(device: torch.device) -> str:
    """What trained the model, for the run record and the model card, e.g. `"1 x NVIDIA H100 80GB HBM3"`."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    processor = platform.processor() or platform.machine()
    return f"CPU ({processor}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


# Argument names whose values are credentials (`TrainingArguments.to_dict` masks those ending in `_token` only):
# masked in the run record, left out of every log.
SECRET_NAME = re.compile(r"(^|_)token$|secret|password|api_key", re.IGNORECASE)


def _mask_secrets(value, name: str = ""):
    """`value` with every entry of a secret-looking name, at any depth, replaced by `<NAME>`."""
    if name and SECRET_NAME.search(name) and value is not None and not isinstance(value, dict | list):
        return f"<{name.upper()}>"
    if isinstance(value, dict):
        return {key: _mask_secrets(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_secrets(item) for item in value]
    return value


def write_run_record(output_dir, model_args, data_args, training_args, corpus, world_size: int, device) -> Path:
    """`training_run.json`: the arguments, split sizes and hardware of a run, from which the model card is written.

    No credential is written: tokens (`hub_token`, any `token` / `*_token` / `*secret` entry, nested ones too) come
    out masked as `<NAME>`.
    """
    training_arguments = training_args.to_dict()
    for name, value in training_arguments.items():
        if isinstance(value, str) and value.lstrip().startswith("{"):
            # Dict-valued arguments given on the command line stay JSON strings until the Trainer reads them.
            with contextlib.suppress(json.JSONDecodeError):
                training_arguments[name] = json.loads(value)
    record = {
        "script": Path(sys.argv[0]).name,
        "splits": {name: len(split) for name, split in corpus.items()},
        "model_arguments": dataclasses.asdict(model_args),
        "data_arguments": dataclasses.asdict(data_args),
        "training_arguments": training_arguments,
        "world_size": world_size,
        "hardware": f"{world_size} x {hardware_description(torch.device(device))}",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    path = Path(output_dir) / "training_run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_mask_secrets(record), indent=2, default=str))
    return path


# A finished Trainer save: `_save_checkpoint` writes `trainer_state.json` last, after weights, optimizer, RNG states.
_CHECKPOINT_FILES = ("config.json", "model.safetensors", "trainer_state.json")
_CHECKPOINT_NAME = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def _missing_checkpoint_files(folder: Path) -> list[str]:
    """What `folder` lacks to be resumed from: the files a finished Trainer save writes (sharded weights count)."""
    missing = []
    for name in _CHECKPOINT_FILES:
        path = folder / name
        if name == "model.safetensors" and not path.is_file():
            path = folder / "model.safetensors.index.json"
        if not path.is_file():
            missing.append(name)
        elif name == "trainer_state.json":
            try:
                json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                missing.append("trainer_state.json (not valid JSON: written only in part)")
    return missing


def _checkpoints_newest_first(run_dir: Path) -> list[Path]:
    folders = [path for path in run_dir.iterdir() if path.is_dir() and _CHECKPOINT_NAME.match(path.name)]
    return sorted(folders, key=lambda path: int(_CHECKPOINT_NAME.match(path.name).group(1)), reverse=True)


def resolve_resume_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str | Path) -> str | None:
    """The Trainer checkpoint folder that `--resume_from_checkpoint` names, checked complete.

    `True` (or "true") means the newest complete checkpoint of `output_dir`, a run folder (one holding `checkpoint-N`
    folders) its newest complete one: a run killed while saving leaves a newer, half-written folder, which is skipped
    with a warning. A checkpoint folder given explicitly must be complete. `None`, `False`, "" or "false": no resume.

    Raises:
        ValueError: naming the folder and the files it lacks (and the complete checkpoints beside it), or saying that
            a run folder holds no complete checkpoint.
    """
    if isinstance(resume_from_checkpoint, str) and resume_from_checkpoint.lower() in ("", "false"):
        resume_from_checkpoint = False
    if not resume_from_checkpoint:
        return None
    if resume_from_checkpoint is True or str(resume_from_checkpoint).lower() == "true":
        folder = Path(output_dir)
    else:
        folder = Path(resume_from_checkpoint)
    if not folder.is_dir():
        raise ValueError(f"--resume_from_checkpoint {folder}: no such folder")
    if _CHECKPOINT_NAME.match(folder.name):
        missing = _missing_checkpoint_files(folder)
        if missing:
            siblings = _checkpoints_newest_first(folder.parent)
            complete = [path.name for path in siblings if path != folder and not _missing_checkpoint_files(path)]
            hint = f"; complete checkpoints beside it: {', '.join(complete)}" if complete else ""
            raise ValueError(
                f"--resume_from_checkpoint {folder} is an incomplete checkpoint (its save was interrupted); "
                f"missing: {', '.join(missing)}{hint}"
            )
        return str(folder)
    incomplete = []
    for checkpoint in _checkpoints_newest_first(folder):
        missing = _missing_checkpoint_files(checkpoint)
        if not missing:
            for name, lacks in incomplete:
                logger.warning("resume: skipping %s, an incomplete checkpoint (missing: %s)", name, lacks)
            return str(checkpoint)
        incomplete.append((checkpoint.name, ", ".join(missing)))
    found = "; ".join(f"{name} lacks {lacks}" for name, lacks in incomplete) or f"no {PREFIX_CHECKPOINT_DIR}-N folder"
    raise ValueError(f"--resume_from_checkpoint: no complete checkpoint in {folder} ({found})")


def resolve_cpu_precision(training_args: Seq2SeqTrainingArguments) -> None:
    """Train in float32, with a warning, where bf16 is asked for on a CPU without bf16 kernels: there every bf16
    matmul is emulated and a training step takes several times as long as in float32."""
    if training_args.bf16 and training_args.use_cpu and not cpu_has_bf16_kernels():
        logger.warning(
            "--bf16 true on a CPU without bf16 kernels (AVX-512 BF16 or AMX): bf16 would be emulated and several "
            "times slower, so training runs in float32"
        )
        training_args.bf16 = False
        if getattr(training_args, "mixed_precision", None) == "bf16":
            training_args.mixed_precision = "no"


def run_training(
    model_args: ModelArguments, data_args: DataArguments, training_args: Seq2SeqTrainingArguments
) -> dict[str, float]:
    """Train, evaluate on the test split, save everything to `training_args.output_dir`; returns the test metrics."""
    check_hub_strategy(training_args)
    resolve_cpu_precision(training_args)
    training_args.resume_from_checkpoint = resolve_resume_checkpoint(
        training_args.resume_from_checkpoint, training_args.output_dir
    )
    set_seed(training_args.seed)
    _check_report_to(training_args)
    corpus, tokenized, tokenizer, model = load_data_and_model(model_args, data_args, training_args)

    callbacks = []
    if data_args.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience))
    trainer = TranslationTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        compute_metrics=build_compute_metrics(
            tokenizer, load_translation_metric(), decoder_start_token_id=model.config.decoder_start_token_id
        ),
        callbacks=callbacks,
    )
    if trainer.is_world_process_zero():
        write_run_record(
            training_args.output_dir, model_args, data_args, training_args, corpus,
            training_args.world_size, training_args.device,
        )  # fmt: skip
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    metrics = {}
    if trainer.is_world_process_zero():
        # The saved checkpoint, as users load it: the Trainer's own model runs under its mixed-precision wrapper, which
        # under bf16 changed about one test translation in six of the German->English models.
        saved = AutoModelForSeq2SeqLM.from_pretrained(training_args.output_dir).to(training_args.device)
        metrics = evaluate_test_split(
            saved,
            tokenizer,
            corpus["test"],
            data_args,
            training_args.output_dir,
            training_args.eval_batch_size,
        )
        trainer.log_metrics("test", metrics)
    if training_args.push_to_hub:
        # Every process: `push_to_hub` saves the model first; process zero writes the card and uploads.
        trainer.push_to_hub(commit_message=f"Test BLEU {metrics.get('test_bleu', 0):.2f}")
    return metrics


def evaluate_test_split(
    model, tokenizer, test_text, data_args: DataArguments, output_dir: str | Path, batch_size: int
):
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
    scores = load_translation_metric().compute(predictions=hypotheses, references=references)
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
    with (output_dir / "test_translations.jsonl").open("w", encoding="utf-8") as lines:
        for source, reference, hypothesis in zip(sources, references, hypotheses, strict=True):
            row = {"source": source, "reference": reference, "hypothesis": hypothesis}
            lines.write(json.dumps(row, ensure_ascii=False) + "\n")
    if model.config.attention_type != "none":
        # The shortest test sentences of 5+ words: readable heatmaps that can still show reordering.
        examples = sorted((source for source in sources if len(source.split()) >= 5), key=len)
        for index, source in enumerate(examples[: data_args.plot_examples]):
            alignment = align(model, tokenizer, source)
            title = f"{source}\n-> {alignment.translation}"
            path = plot_alignment(alignment, output_dir / f"attention_{index}.png", title=title)
            logger.info("attention heatmap: %s", path)
    return metrics


__all__ = [
    "DataArguments",
    "ModelArguments",
    "build_compute_metrics",
    "build_model",
    "generated_lengths",
    "resolve_resume_checkpoint",
    "run_training",
    "set_generation_defaults",
    "write_run_record",
]
