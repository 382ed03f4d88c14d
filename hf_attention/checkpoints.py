"""Checkpoint folders: which Trainer checkpoint a `--resume_from_checkpoint` means (complete ones only), the
Accelerate loop's checkpoints (its position as JSON, folders that are renamed into place only once complete)."""

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from accelerate import Accelerator
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)


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


def checkpoints_newest_first(run_dir: Path) -> list[Path]:
    """The `checkpoint-N` folders of `run_dir`, highest N first (complete or not)."""
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
            siblings = checkpoints_newest_first(folder.parent)
            complete = [path.name for path in siblings if path != folder and not _missing_checkpoint_files(path)]
            hint = f"; complete checkpoints beside it: {', '.join(complete)}" if complete else ""
            raise ValueError(
                f"--resume_from_checkpoint {folder} is an incomplete checkpoint (its save was interrupted); "
                f"missing: {', '.join(missing)}{hint}"
            )
        return str(folder)
    incomplete = []
    for checkpoint in checkpoints_newest_first(folder):
        missing = _missing_checkpoint_files(checkpoint)
        if not missing:
            for name, lacks in incomplete:
                logger.warning("resume: skipping %s, an incomplete checkpoint (missing: %s)", name, lacks)
            return str(checkpoint)
        incomplete.append((checkpoint.name, ", ".join(missing)))
    found = "; ".join(f"{name} lacks {lacks}" for name, lacks in incomplete) or f"no {PREFIX_CHECKPOINT_DIR}-N folder"
    raise ValueError(f"--resume_from_checkpoint: no complete checkpoint in {folder} ({found})")


PROGRESS_NAME = "training_progress.json"


@dataclass
class TrainingProgress:
    """The loop's position, saved as JSON in each checkpoint beside the model, optimizer, scheduler and RNG states.

    Not through `Accelerator.register_for_checkpointing`: `load_state` reads registered objects back with
    `torch.load(weights_only=False)`, so a crafted checkpoint would run code on resume.

    `elapsed_seconds` is the training time spent so far under a time budget (`max_train_minutes`), written only then.
    """

    completed_steps: int = 0
    elapsed_seconds: float | None = None

    def save(self, checkpoint: Path) -> None:
        position = {"completed_steps": self.completed_steps}
        if self.elapsed_seconds is not None:
            position["elapsed_seconds"] = self.elapsed_seconds
        # Written aside and renamed: the file is rewritten in a finished checkpoint once the time is known.
        partial = checkpoint / f"{PROGRESS_NAME}.partial"
        partial.write_text(json.dumps(position))
        partial.replace(checkpoint / PROGRESS_NAME)

    @classmethod
    def load(cls, checkpoint: str | Path) -> "TrainingProgress":
        """The position saved in `checkpoint`; `ValueError` for anything but a complete checkpoint of this loop."""
        checkpoint = Path(checkpoint)
        if not checkpoint.is_dir():
            raise ValueError(f"--resume_from_checkpoint {checkpoint}: no such folder")
        if checkpoint.name.endswith(".partial"):
            raise ValueError(
                f"--resume_from_checkpoint {checkpoint}: an unfinished checkpoint (a run stopped while writing it); "
                "resume from a checkpoint-N folder"
            )
        # Files `load_state` would unpickle with `weights_only=False`: refused rather than loaded.
        pickles = sorted(path.name for path in checkpoint.glob("custom_checkpoint_*.pkl"))
        if pickles:
            raise ValueError(
                f"--resume_from_checkpoint {checkpoint}: {', '.join(pickles)} not loaded (unpickling a file can run "
                f"code); this loop reads its position from {PROGRESS_NAME} only. Remove the file(s) from the folder "
                "if it is a checkpoint of this loop"
            )
        path = checkpoint / PROGRESS_NAME
        if not path.is_file():
            raise ValueError(
                f"--resume_from_checkpoint {checkpoint}: no {PROGRESS_NAME}; give a checkpoint-N folder written by "
                "scripts/train_accelerate.py"
            )
        try:
            position = json.loads(path.read_text())
            steps = position["completed_steps"]
            elapsed = position.get("elapsed_seconds")
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f'{path}: expected {{"completed_steps": N}}, could not read it ({error})') from None
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"{path}: completed_steps must be a non-negative integer, got {steps!r}")
        valid_seconds = (
            isinstance(elapsed, int | float) and not isinstance(elapsed, bool) and 0 <= elapsed < float("inf")
        )
        if elapsed is not None and not valid_seconds:
            raise ValueError(f"{path}: elapsed_seconds must be a non-negative number of seconds, got {elapsed!r}")
        return cls(completed_steps=steps, elapsed_seconds=None if elapsed is None else float(elapsed))


def save_checkpoint(accelerator: Accelerator, model, tokenizer, output_dir: Path, step: int, total_limit) -> Path:
    """`save_state` into `checkpoint-{step}`, with the config and tokenizer a resume rebuilds the model from.

    The state is written under a `.partial` name and renamed once every process has written its part, so a folder
    named `checkpoint-N` is always complete. Only the newest `total_limit` checkpoints are kept.
    """
    final, partial = output_dir / f"checkpoint-{step}", output_dir / f"checkpoint-{step}.partial"
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        TrainingProgress(completed_steps=step).save(partial)
        accelerator.unwrap_model(model).config.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        if total_limit:
            checkpoints = sorted(output_dir.glob("checkpoint-*[0-9]"), key=lambda path: int(path.name.split("-")[1]))
            for stale in checkpoints[:-total_limit]:
                shutil.rmtree(stale)
    accelerator.wait_for_everyone()
    return final


def remove_partial_checkpoints(output_dir: Path) -> list[Path]:
    """Delete the `checkpoint-N.partial` folders a run stopped while saving left behind; returns them."""
    stale = sorted(path for path in output_dir.glob("checkpoint-*.partial") if path.is_dir())
    for path in stale:
        logger.warning("removing %s, an unfinished checkpoint of an earlier run", path)
        shutil.rmtree(path)
    return stale


__all__ = [
    "PROGRESS_NAME",
    "TrainingProgress",
    "checkpoints_newest_first",
    "remove_partial_checkpoints",
    "resolve_resume_checkpoint",
    "save_checkpoint",
]
