"""The run record, `training_run.json`: what a run was trained with and on, with every credential masked. The model
card is written from it."""

import contextlib
import dataclasses
import json
import os
import platform
import re
import sys
from pathlib import Path

import torch
import transformers

from .data import split_overlap


def hardware_description(device: torch.device) -> str:
    """What trained the model, for the run record and the model card, e.g. `"1 x NVIDIA H100 80GB HBM3"`."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    processor = platform.processor() or platform.machine()
    return f"CPU ({processor}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


# Argument names whose values are credentials (`TrainingArguments.to_dict` masks those ending in `_token` only):
# masked in the run record, left out of every log.
SECRET_NAME = re.compile(r"(^|_)token$|secret|password|api_key", re.IGNORECASE)


def mask_secrets(value, name: str = ""):
    """`value` with every entry of a secret-looking name, at any depth, replaced by `<NAME>`."""
    if name and SECRET_NAME.search(name) and value is not None and not isinstance(value, dict | list):
        return f"<{name.upper()}>"
    if isinstance(value, dict):
        return {key: mask_secrets(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value


def write_run_record(output_dir, model_args, data_args, training_args, corpus, world_size: int, device) -> Path:
    """`training_run.json`: the arguments, split sizes, held-out overlap with train (`split_overlap`) and hardware of
    a run, from which the model card is written.

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
        "split_overlap": split_overlap(corpus, data_args.src_lang, data_args.tgt_lang),
        "model_arguments": dataclasses.asdict(model_args),
        "data_arguments": dataclasses.asdict(data_args),
        "training_arguments": training_arguments,
        "world_size": world_size,
        "hardware": f"{world_size} x {hardware_description(torch.device(device))}",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    path = Path(output_dir) / "training_run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mask_secrets(record), indent=2, default=str))
    return path


__all__ = ["SECRET_NAME", "hardware_description", "mask_secrets", "write_run_record"]
