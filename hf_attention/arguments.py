"""The arguments of a training run beyond `Seq2SeqTrainingArguments`, and the adjustments both training loops make
to the training arguments before they start."""

import importlib.util
import logging
import math
from dataclasses import dataclass, field

from transformers import Seq2SeqTrainingArguments

from .modeling_seq2seq_attention import cpu_has_bf16_kernels

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """The model to train: a new one (architecture below) or `init_from` an existing checkpoint."""

    init_from: str | None = field(
        default=None, metadata={"help": "checkpoint folder or Hub id to fine-tune (its tokenizer is reused)"}
    )
    attention_type: str = field(default="bahdanau", metadata={"help": "bahdanau, scaled_dot, dot, general or none"})
    rnn_type: str = field(default="lstm", metadata={"help": "lstm or gru"})
    encoder_layer_types: list[str] | None = field(
        default=None,
        metadata={"help": "rnn or self_attention per encoder layer, bottom first; default: num_hidden_layers rnn"},
    )
    decoder_layer_types: list[str] | None = field(
        default=None, metadata={"help": "the same for the decoder (rnn layers only)"}
    )
    self_attention_type: str | None = field(
        default=None, metadata={"help": "alignment function of the self-attention layers; default: attention_type"}
    )
    intermediate_size: int | None = field(
        default=None, metadata={"help": "feed-forward width of the self-attention layers; default: 4 * hidden_size"}
    )
    hidden_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    dropout: float = 0.2
    attention_dropout: float = 0.0
    word_dropout: float = field(
        default=0.0, metadata={"help": "probability of dropping a whole source or target token in training"}
    )
    initializer_range: float = 0.1
    compile_additive_attention: bool | None = field(
        default=None,
        metadata={"help": "bahdanau: true = fused compiled kernels, false = eager; unset = chosen by size (default)"},
    )
    vocab_size: int = field(default=8000, metadata={"help": "size of the BPE vocabulary trained from scratch"})


# The data arguments that decide which pairs fall in which split: a tool scoring a checkpoint on "its" validation or
# test split must use the values it was trained with, or it may score pairs the model was trained on.
SPLIT_ARGUMENTS = (
    "corpus",
    "src_lang",
    "tgt_lang",
    "validation_size",
    "test_size",
    "split_seed",
    "synthetic_size",
    "synthetic_min_length",
    "synthetic_max_length",
    "ding_lexicon_size",
)


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
    allow_split_overlap: bool = field(
        default=False,
        metadata={
            "help": "go on when over 1% of the validation or test sources are also training sources (the overlap "
            "is measured on every run and kept in training_run.json)"
        },
    )
    synthetic_size: int = field(default=20000, metadata={"help": "training pairs of a synthetic corpus"})
    synthetic_min_length: int | None = field(
        default=None, metadata={"help": "shortest sequence (words) of the reversal task; default 4"}
    )
    synthetic_max_length: int | None = field(
        default=None, metadata={"help": "longest sequence (words) of the reversal task; default 12"}
    )
    ding_lexicon_size: int = field(
        default=0, metadata={"help": "ding: word and phrase pairs of the dictionary added to the training split"}
    )
    max_source_length: int = 64
    max_target_length: int = 64
    bpe_dropout: float = field(
        default=0.0, metadata={"help": "BPE-dropout on training sources: probability of skipping each merge"}
    )
    bpe_dropout_copies: int = field(
        default=1, metadata={"help": "with bpe_dropout, segmentations of each training source (one epoch sees all)"}
    )
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    early_stopping_patience: int = field(default=0, metadata={"help": "evaluations without improvement; 0 = off"})
    length_penalty: float | None = field(
        default=None,
        metadata={
            "help": "beam search's length penalty saved in the generation config (chosen on validation); default: "
            "the model's own (1.0 for a new one)"
        },
    )
    plot_examples: int = field(default=3, metadata={"help": "test sentences whose attention is plotted"})

    def __post_init__(self):
        # Saved into the generation config of every checkpoint: NaN there breaks every later translation.
        if self.length_penalty is not None and not (math.isfinite(self.length_penalty) and self.length_penalty > 0):
            raise ValueError(f"--length_penalty {self.length_penalty}: expected a finite number > 0")


@dataclass
class TranslationTrainingArguments(Seq2SeqTrainingArguments):
    """`Seq2SeqTrainingArguments` with the two budgets NMT toolkits train by: wall-clock time and tokens per batch."""

    max_train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "stop training (saving and evaluating the last step) once this many minutes have passed; the "
            "learning-rate schedule then runs over the time budget rather than over max_steps"
        },
    )
    max_tokens_per_batch: int | None = field(
        default=None,
        metadata={
            "help": "batch by tokens: each device's batch holds at most this many padded tokens (sentences x the "
            "longest side), replacing per_device_train_batch_size"
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.max_train_minutes is not None and not self.max_train_minutes > 0:
            raise ValueError(f"max_train_minutes={self.max_train_minutes} must be a positive number of minutes.")
        if self.max_tokens_per_batch is not None and self.max_tokens_per_batch < 1:
            raise ValueError(f"max_tokens_per_batch={self.max_tokens_per_batch} must be a positive number of tokens.")
        # Checked here, at start: the first evaluation would otherwise fail after minutes of training.
        if self.generation_num_beams is not None and self.generation_num_beams < 1:
            raise ValueError(
                f"--generation_num_beams {self.generation_num_beams}: expected a whole number >= 1 (1 is greedy), or "
                "leave it out for the model's generation config"
            )


def check_report_to(training_args: Seq2SeqTrainingArguments) -> None:
    """Drop tensorboard from `report_to`, with a warning, when it is not installed."""
    if "tensorboard" in training_args.report_to and importlib.util.find_spec("tensorboard") is None:
        logger.warning("report_to includes tensorboard, which is not installed: logging to the console only")
        training_args.report_to = [name for name in training_args.report_to if name != "tensorboard"]


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


__all__ = [
    "SPLIT_ARGUMENTS",
    "DataArguments",
    "ModelArguments",
    "TranslationTrainingArguments",
    "check_report_to",
    "resolve_cpu_precision",
]
