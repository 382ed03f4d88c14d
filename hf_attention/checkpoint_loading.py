"""The one way every tool of the package loads a trained checkpoint: `load_checkpoint`.

Scripts, analysis functions, checkpoint averaging, decoding tuning, the explorer and the end of both training loops
go through it, so a checkpoint is checked the same way wherever it is used: the model type of `config.json`, the
architecture and weight checksums recorded at save time (`weights_manifest.py`, checked by the model's
`from_pretrained`), the tokenizer file and its special tokens against the config, and finite generation settings.
Each refusal is one line naming the file, the field and the values.
"""

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from transformers import GenerationConfig, PreTrainedTokenizerBase
from transformers.utils import CONFIG_NAME, GENERATION_CONFIG_NAME, cached_file

from .configuration_seq2seq_attention import Seq2SeqAttentionConfig
from .modeling_seq2seq_attention import HUB_KWARGS, Seq2SeqAttentionForConditionalGeneration
from .tokenization import load_tokenizer

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
TRAINING_RECORD = "training_run.json"
_TRAINER_CHECKPOINT = re.compile(r"^checkpoint-\d+$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as it is; the message names the file, the field and the values."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode, on the requested device), its tokenizer, the generation settings
    it translates with by default, and the record of the run that trained it (`training_run.json`; None where the
    folder has none, e.g. a model saved by hand)."""

    path: str
    model: Seq2SeqAttentionForConditionalGeneration
    tokenizer: PreTrainedTokenizerBase
    training_record: dict | None

    @property
    def generation_config(self) -> GenerationConfig:
        return self.model.generation_config

    @property
    def config(self) -> Seq2SeqAttentionConfig:
        return self.model.config


def _is_path(name: str) -> bool:
    try:
        return name.startswith(("/", ".", "~")) or Path(name).expanduser().exists()
    except OSError:  # a name too long for the file system, say: no folder of that name
        return True


def _is_folder(name: str) -> bool:
    try:
        return Path(name).expanduser().is_dir()
    except OSError:
        return False


def _checkpoint_file(checkpoint: str, name: str, hub_kwargs: dict) -> str | None:
    try:
        return cached_file(checkpoint, name, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    except OSError as error:  # a Hub id that cannot be reached (offline) or does not exist
        raise CheckpointError(
            f"{checkpoint}: not a local checkpoint folder, and not loadable from the Hub ({error})"
        ) from None


def check_model_type(checkpoint: str, hub_kwargs: dict | None = None) -> str:
    """The path of the checkpoint's `config.json`, after checking that it is this package's model.

    Raises:
        CheckpointError: no `config.json`, an unreadable one, or another `model_type` (which `AutoModel` would load
            as that architecture, with random weights).
    """
    hub_kwargs = hub_kwargs or {}
    config_file = _checkpoint_file(checkpoint, CONFIG_NAME, hub_kwargs)
    if config_file is None and not _is_path(checkpoint):
        raise CheckpointError(
            f"{checkpoint}: not a local checkpoint folder, and no {CONFIG_NAME} for it on the Hub or in its cache"
        )
    if config_file is None:
        raise CheckpointError(f"{checkpoint}: no {CONFIG_NAME}; not a checkpoint folder (save with save_pretrained)")
    try:
        model_type = json.loads(Path(config_file).read_text()).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise CheckpointError(f"{config_file}: not a readable JSON config ({error})") from None
    expected = Seq2SeqAttentionConfig.model_type
    if model_type != expected:
        raise CheckpointError(
            f"{config_file}: model_type={model_type!r}; this package loads model_type={expected!r} checkpoints only"
        )
    return config_file


def _check_tokenizer(checkpoint: str, tokenizer, config: Seq2SeqAttentionConfig) -> None:
    """The tokenizer must give the ids the model was trained on: its special tokens where the config has them, and
    no id past the embedding table."""
    if len(tokenizer) > config.vocab_size:
        raise CheckpointError(
            f"{checkpoint}: the tokenizer has {len(tokenizer)} tokens, more than the model's vocab_size="
            f"{config.vocab_size}; the tokenizer does not belong to these weights"
        )
    pairs = (
        ("pad_token_id", tokenizer.pad_token_id, config.pad_token_id),
        ("eos_token_id", tokenizer.eos_token_id, config.eos_token_id),
        ("bos_token_id", tokenizer.bos_token_id, config.decoder_start_token_id),
    )
    for name, token_id, config_id in pairs:
        expected = config_id if isinstance(config_id, list) else [config_id]
        if token_id is not None and config_id is not None and token_id not in expected:
            field = "decoder_start_token_id" if name == "bos_token_id" else name
            raise CheckpointError(
                f"{checkpoint}: the tokenizer's {name} is {token_id}, config.json's {field} is {config_id}; the "
                "tokenizer does not belong to these weights"
            )


def check_generation_config(generation_config: GenerationConfig, source: str) -> None:
    """Raise `CheckpointError` for a generation setting no decoding can use: a non-finite number, fewer than one
    beam or returned sequence, or a non-positive token limit."""
    for name, value in generation_config.to_diff_dict().items():
        if isinstance(value, float) and not math.isfinite(value):
            raise CheckpointError(f"{source}: {name}={value} is not a finite number")
    for name in ("num_beams", "num_return_sequences", "max_new_tokens", "max_length"):
        value = getattr(generation_config, name, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise CheckpointError(f"{source}: {name}={value!r}; expected a whole number >= 1")


def read_training_record(checkpoint: str | Path) -> dict | None:
    """`training_run.json` of a local checkpoint folder, or of the run folder holding a `checkpoint-N` folder;
    None where there is none (a Hub id, a model saved by hand)."""
    folder = Path(checkpoint).expanduser()
    candidates = [folder / TRAINING_RECORD]
    if _TRAINER_CHECKPOINT.match(folder.name):
        candidates.append(folder.parent / TRAINING_RECORD)
    for path in candidates:
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise CheckpointError(f"{path}: not a readable run record ({error})") from None
    return None


def load_checkpoint(checkpoint: str | Path, device: str = "cpu", **from_pretrained_kwargs) -> Checkpoint:
    """Load and check a checkpoint folder or Hub id: model, tokenizer, generation settings and training record.

    Args:
        checkpoint: a folder written by the training scripts or `save_pretrained`, or a Hub id.
        device: where the model goes.
        from_pretrained_kwargs: passed to `from_pretrained` (e.g. `revision`, `dtype`,
            `compile_additive_attention`); an override of an architecture field is refused as an edited config is.

    Raises:
        CheckpointError: naming the file and field for anything that would load a model computing something other
            than what was trained (see the module docstring).
    """
    name = str(checkpoint)
    if _is_path(name) and not _is_folder(name):
        raise CheckpointError(f"{name}: no such checkpoint folder")
    if _is_path(name):
        name = str(Path(name).expanduser())
        if name.rstrip("/").endswith(".partial"):
            raise CheckpointError(f"{name}: an unfinished checkpoint (a run stopped while writing it)")
    hub_kwargs = {key: from_pretrained_kwargs[key] for key in HUB_KWARGS if key in from_pretrained_kwargs}
    check_model_type(name, hub_kwargs)
    if _checkpoint_file(name, TOKENIZER_FILE, hub_kwargs) is None:
        raise CheckpointError(
            f"{name}: no {TOKENIZER_FILE}; a checkpoint of this package keeps its BPE tokenizer there (save it with "
            "tokenizer.save_pretrained into the same folder)"
        )
    try:
        tokenizer = load_tokenizer(name, **hub_kwargs)
        model = Seq2SeqAttentionForConditionalGeneration.from_pretrained(name, **from_pretrained_kwargs)
    except CheckpointError:
        raise
    except (OSError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(message if name in message else f"{name}: {message}") from error
    _check_tokenizer(name, tokenizer, model.config)
    generation_file = _checkpoint_file(name, GENERATION_CONFIG_NAME, hub_kwargs)
    if generation_file is not None:
        # transformers falls back to default settings for an unreadable file, silently: greedy, 20 tokens.
        try:
            json.loads(Path(generation_file).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{generation_file}: not a readable JSON file ({error})") from None
    check_generation_config(model.generation_config, generation_file or f"{name} (generation settings)")
    return Checkpoint(
        path=name,
        model=model.to(device).eval(),
        tokenizer=tokenizer,
        training_record=read_training_record(name) if _is_path(name) else None,
    )


def translation_pipeline(checkpoint: str | Path, device: str = "cpu", **from_pretrained_kwargs):
    """`pipeline("translation")` over a checkpoint loaded (and checked) by `load_checkpoint`.

    `pipeline("translation", model=FOLDER)` works too and checks the weights manifest, but loads the tokenizer
    unchecked and loads a `config.json` of another model type as that model.
    """
    from transformers import pipeline  # not at import: loading the pipelines is slow

    loaded = load_checkpoint(checkpoint, device=device, **from_pretrained_kwargs)
    return pipeline("translation", model=loaded.model, tokenizer=loaded.tokenizer, device=loaded.model.device)


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "check_generation_config",
    "check_model_type",
    "load_checkpoint",
    "read_training_record",
    "translation_pipeline",
]
