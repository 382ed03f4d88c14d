"""Command lines over YAML presets: `--config FILE.yaml` supplies defaults, any `--key value` after it overrides them.

The parsing itself is `transformers.HfArgumentParser` over dataclasses (e.g. `Seq2SeqTrainingArguments`); the YAML
file is turned into the same `--key value` arguments, placed before the command line so that later values win.
"""

import sys
from pathlib import Path

import yaml
from transformers import HfArgumentParser


def yaml_to_arguments(path: str | Path) -> list[str]:
    """`key: value` pairs of a YAML mapping as command-line arguments; lists become several values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(
            f"--config {path}: expected a mapping of argument names to values, got {type(values).__name__}"
        )
    arguments = []
    for key, value in values.items():
        items = value if isinstance(value, list) else [value]
        arguments += [f"--{key}", *(str(item) for item in items)]
    return arguments


def parse_arguments(dataclass_types: tuple, argv: list[str] | None = None) -> tuple:
    """Parse `argv` (default: `sys.argv[1:]`) into instances of `dataclass_types`, honouring `--config FILE`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" in argv:
        index = argv.index("--config")
        if index + 1 >= len(argv):
            raise ValueError("--config needs a YAML file path")
        config_arguments = yaml_to_arguments(argv[index + 1])
        argv = config_arguments + argv[:index] + argv[index + 2 :]
    return HfArgumentParser(dataclass_types).parse_args_into_dataclasses(args=argv, look_for_args_file=False)


__all__ = ["parse_arguments", "yaml_to_arguments"]
