"""Checkpoint averaging, as NMT toolkits average the last checkpoints of a run: the element-wise mean of the weights
of checkpoints of one architecture and one tokenizer, written as a new, complete model folder.

Every input goes through `load_checkpoint` (model type, recorded architecture, weight checksums, tokenizer), and
inputs that differ in architecture, tokenizer or vocabulary are refused: two checkpoints of `scaled_dot` and `dot`
have the same tensor shapes, and their mean is no model at all.
"""

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .checkpoint_loading import TRAINING_RECORD, load_checkpoint
from .checkpoints import checkpoints_newest_first

logger = logging.getLogger(__name__)

RECORD_NAME = "averaged_checkpoints.json"


def _has_weights(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file()


def checkpoints_to_average(paths: list[str | Path], last: int | None = None) -> list[Path]:
    """The checkpoint folders that `paths` name, oldest first: a run folder (one holding `checkpoint-N` folders with
    weights, such as a training's output folder) stands for those checkpoints, the newest `last` of them when `last`
    is given; any other folder holding weights is one checkpoint.

    Raises:
        ValueError: `last` below 1, a missing folder, a folder without weights, or a checkpoint named twice.
    """
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
        raise ValueError(f"--last {last}: expected a whole number >= 1 (or leave it out for every checkpoint)")
    if not paths:
        raise ValueError("--checkpoints: name at least one checkpoint folder or run folder")
    folders = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise ValueError(f"{path}: no such folder")
        found = [folder for folder in checkpoints_newest_first(path) if _has_weights(folder)]
        if found:
            folders.extend(reversed(found[:last] if last else found))
        elif _has_weights(path):
            folders.append(path)
        else:
            raise ValueError(f"{path}: neither model.safetensors nor {PREFIX_CHECKPOINT_DIR}-N folders with one")
    seen = {}
    for folder in folders:
        resolved = folder.resolve()
        if resolved in seen:
            raise ValueError(
                f"{folder}: named twice (also as {seen[resolved]}); each checkpoint may be averaged once, or it would "
                "weigh double"
            )
        seen[resolved] = folder
    return folders


def check_output_dir(output_dir: str | Path, folders: list[str | Path]) -> Path:
    """`output_dir`, refused when it is, holds or lies inside one of `folders`, or is a folder with files in it
    (another model or a run's outputs would be overwritten)."""
    output_dir = Path(output_dir)
    resolved = output_dir.resolve()
    for folder in map(Path, folders):
        source = folder.resolve()
        if resolved == source or resolved in source.parents or source in resolved.parents:
            raise ValueError(
                f"--output_dir {output_dir}: it is or contains the input {folder}; write the average to a new folder"
            )
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ValueError(
            f"--output_dir {output_dir}: exists and is not an empty folder; averaging would overwrite what it holds: "
            "give a new folder"
        )
    return output_dir


def check_compatible(folders: list[str | Path]) -> None:
    """Load every checkpoint (checked as `load_checkpoint` checks it) and refuse any that differs from the first in
    an architecture field, its tokenizer or its vocabulary, naming both folders, the field and both values."""
    reference_folder = Path(folders[0])
    reference = load_checkpoint(reference_folder)
    architecture = reference.config.architecture()
    tokenizer = reference.tokenizer.backend_tokenizer.to_str()
    special_tokens = reference.tokenizer.special_tokens_map
    del reference
    for folder in map(Path, folders[1:]):
        other = load_checkpoint(folder)
        for name, value in other.config.architecture().items():
            if value != architecture[name]:
                raise ValueError(
                    f"{folder}: {name}={value!r}, but {reference_folder} has {name}={architecture[name]!r}; only "
                    "checkpoints of one architecture can be averaged"
                )
        if other.tokenizer.special_tokens_map != special_tokens or other.tokenizer.backend_tokenizer.to_str() != (
            tokenizer
        ):
            raise ValueError(
                f"{folder}: its tokenizer differs from {reference_folder}'s (vocabulary, merges or special tokens); "
                "the same id would mean different tokens: only checkpoints of one tokenizer can be averaged"
            )


def average_checkpoints(folders: list[str | Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the `model.safetensors` weights of `folders` (computed in float64, stored in each
    tensor's own dtype).

    Raises:
        ValueError: naming the folder and tensor where the checkpoints differ in names, shapes or dtypes, or hold
            different integer tensors (which have no mean).
    """
    if not folders:
        raise ValueError("average_checkpoints: no checkpoint folders given")
    reference_folder, *others = map(Path, folders)
    reference = load_file(reference_folder / "model.safetensors")
    sums = {name: tensor.double() if tensor.is_floating_point() else tensor for name, tensor in reference.items()}
    for folder in others:
        weights = load_file(folder / "model.safetensors")
        if weights.keys() != reference.keys():
            difference = sorted(weights.keys() ^ reference.keys())
            raise ValueError(f"{folder} and {reference_folder} hold different tensors: {', '.join(difference[:5])}")
        for name, tensor in weights.items():
            if tensor.shape != reference[name].shape or tensor.dtype != reference[name].dtype:
                raise ValueError(
                    f"{folder}: {name} is {tuple(tensor.shape)} {tensor.dtype}, in {reference_folder} "
                    f"{tuple(reference[name].shape)} {reference[name].dtype}"
                )
            if tensor.is_floating_point():
                sums[name] += tensor.double()
            elif not torch.equal(tensor, reference[name]):
                raise ValueError(f"{folder}: the integer tensor {name} differs from {reference_folder}'s")
    count = len(folders)
    return {
        name: (total / count).to(reference[name].dtype) if total.is_floating_point() else total
        for name, total in sums.items()
    }


def save_averaged_checkpoint(folders: list[str | Path], output_dir: str | Path) -> Path:
    """Write a complete model folder to `output_dir`: the newest of `folders` (config, generation config, tokenizer,
    code files, run record) with the average of all their weights, and `averaged_checkpoints.json` naming them.

    The folder is written under a `.partial` name and renamed once complete, so a stopped run leaves no folder that
    looks like a model.

    Raises:
        ValueError: see `check_output_dir`, `check_compatible` and `average_checkpoints`; nothing is written then.
    """
    if not folders:
        raise ValueError("save_averaged_checkpoint: no checkpoint folders given")
    output_dir = check_output_dir(output_dir, folders)
    check_compatible(folders)
    averaged = average_checkpoints(folders)
    newest = load_checkpoint(folders[-1])
    missing, unexpected = newest.model.load_state_dict(averaged, strict=False)
    stored = set(load_file(Path(folders[-1]) / "model.safetensors"))
    if unexpected or any(name in stored for name in missing):
        raise ValueError(
            f"{folders[-1]}: the averaged weights do not fit the model it holds ({unexpected or missing})"
        )
    partial = output_dir.with_name(f"{output_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    newest.model.save_pretrained(partial)
    newest.tokenizer.save_pretrained(partial)
    (partial / RECORD_NAME).write_text(json.dumps([str(folder) for folder in folders], indent=1))
    if newest.training_record is not None:  # which pairs the weights were trained on, for tuning and scoring
        (partial / TRAINING_RECORD).write_text(json.dumps(newest.training_record, indent=2))
    if output_dir.exists():
        output_dir.rmdir()  # empty: check_output_dir refused anything else
    partial.rename(output_dir)
    logger.info("averaged %d checkpoints into %s", len(folders), output_dir)
    return output_dir


__all__ = [
    "average_checkpoints",
    "check_compatible",
    "check_output_dir",
    "checkpoints_to_average",
    "save_averaged_checkpoint",
]
