"""Average the weights of several checkpoints into one model folder (as NMT toolkits average a run's last ones).

    python scripts/average_checkpoints.py --checkpoints outputs/demo --last 3 --output_dir outputs/demo_averaged
    python scripts/average_checkpoints.py --checkpoints run/checkpoint-800 run/checkpoint-1200 --output_dir averaged

A folder holding `model.safetensors` is one checkpoint; a run folder stands for its `checkpoint-N` folders (the newest
`--last` of them). The output is a complete model folder (config, tokenizer, code files) of the newest checkpoint with
the averaged weights, loadable with `AutoModelForSeq2SeqLM.from_pretrained`.

Checkpoints that differ in architecture (attention type, layer types, ...), tokenizer or vocabulary are refused, as
are a checkpoint named twice, `--last` below 1, and an `--output_dir` that is an input, holds one, or is a folder with
files in it: each with a one-line `average_checkpoints.py: error: ...` and exit status 1, before anything is written.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from hf_attention.averaging import checkpoints_to_average, save_averaged_checkpoint
from hf_attention.cli import parse_arguments, setup_logging

PROG = Path(__file__).name


@dataclass
class AveragingArguments:
    checkpoints: list[str] = field(metadata={"help": "checkpoint folders, or run folders holding checkpoint-N"})
    output_dir: str = field(metadata={"help": "where the averaged model folder is written"})
    last: int | None = field(default=None, metadata={"help": "of a run folder, the newest N checkpoints only"})


def main(argv: list[str] | None = None):
    try:
        (arguments,) = parse_arguments((AveragingArguments,), argv)
        setup_logging()
        folders = checkpoints_to_average(arguments.checkpoints, arguments.last)
        output_dir = save_averaged_checkpoint(folders, arguments.output_dir)
    except ValueError as error:  # a CheckpointError of any input included
        sys.exit(f"{PROG}: error: {error}")
    print(output_dir)


if __name__ == "__main__":
    main()
