"""Command lines over YAML presets, and the scripts' logging set-up.

`--config BASE.yaml [OVERRIDES.yaml ...]` supplies defaults: the files are merged in order (a later file's key wins)
and any `--key value` on the command line overrides them all. The parsing itself is `transformers.HfArgumentParser`
over dataclasses (e.g. `Seq2SeqTrainingArguments`); the merged presets are turned into the same `--key value`
arguments, placed before the command line so that its values win.
"""

import logging
import os
import sys
from pathlib import Path

import datasets
import transformers
import yaml
from transformers import HfArgumentParser, TrainingArguments


def _read_mapping(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(
            f"--config {path}: expected a mapping of argument names to values, got {type(values).__name__}"
        )
    return values


def yaml_to_arguments(*paths: str | Path) -> list[str]:
    """The `key: value` pairs of the YAML mappings `paths`, merged in order (a later file's key wins), as
    command-line arguments; lists become several values. A key whose merged value is null (`key: null` or `key:`) is
    left out, so that an override file can take a base preset's setting back to the field's default."""
    values = {}
    for path in paths:
        values.update(_read_mapping(Path(path)))
    arguments = []
    for key, value in values.items():
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        arguments += [f"--{key}", *(str(item) for item in items)]
    return arguments


def expand_presets(argv: list[str] | None = None) -> list[str]:
    """`argv` (default: `sys.argv[1:]`) with `--config FILE [FILE ...]` replaced by the presets' `--key value`
    arguments, placed before the rest so that the command line wins."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" not in argv:
        return argv
    start = argv.index("--config") + 1
    end = start
    while end < len(argv) and not argv[end].startswith("-"):
        end += 1
    if end == start:
        raise ValueError("--config needs one or more YAML file paths")
    if "--config" in argv[end:]:
        raise ValueError("--config is given twice: name every preset after one --config (--config a.yaml b.yaml)")
    return yaml_to_arguments(*argv[start:end]) + argv[: start - 1] + argv[end:]


def given_arguments(argv: list[str] | None = None) -> set[str]:
    """The argument names that `argv` sets, by a preset or on the command line (not left to their defaults)."""
    return {item[2:].split("=")[0] for item in expand_presets(argv) if item.startswith("--")}


def parse_arguments(dataclass_types: tuple, argv: list[str] | None = None) -> tuple:
    """Parse `argv` (default: `sys.argv[1:]`) into instances of `dataclass_types`, honouring `--config FILE [FILE ...]`
    anywhere in it."""
    return HfArgumentParser(dataclass_types).parse_args_into_dataclasses(
        args=expand_presets(argv), look_for_args_file=False
    )


def setup_logging(training_args: TrainingArguments | None = None) -> int:
    """Log to stderr with timestamps, and set this process's level on the `hf_attention`, transformers and datasets
    loggers: `training_args.get_process_log_level()` (`--log_level` on the main process, by default transformers'
    verbosity; `--log_level_replica` on the others), or without `training_args` INFO on the main process and WARNING
    on the others. Returns that level."""
    if training_args is None:
        # Rank from the launcher's environment: asking Accelerate now would fix its state before the run chooses it.
        is_main_process = os.environ.get("RANK", "0") == "0"
        level = logging.INFO if is_main_process else logging.WARNING
    else:
        is_main_process = training_args.should_log
        level = training_args.get_process_log_level()
    # Other libraries' loggers (torch.distributed's, for one) stay at INFO on the main process only.
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO if is_main_process else level
    )
    logging.getLogger("hf_attention").setLevel(level)
    transformers.utils.logging.set_verbosity(level)
    datasets.utils.logging.set_verbosity(level)
    return level


__all__ = ["expand_presets", "given_arguments", "parse_arguments", "setup_logging", "yaml_to_arguments"]
