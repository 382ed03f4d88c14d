"""Average the weights of several checkpoints into one model folder (as NMT toolkits average a run's last ones).

    python scripts/average_checkpoints.py --checkpoints outputs/demo --last 3 --output_dir outputs/demo_averaged
    python scripts/average_checkpoints.py --checkpoints run/checkpoint-800 run/checkpoint-1200 --output_dir averaged

A folder holding `model.safetensors` is one checkpoint; a run folder stands for its `checkpoint-N` folders (the newest
`--last` of them). The output is a complete model folder (config, tokenizer, code files) of the newest checkpoint with
the averaged weights, loadable with `AutoModelForSeq2SeqLM.from_pretrained`.
"""

from dataclasses import dataclass, field

import hf_attention  # noqa: F401  (registers the model with the Auto classes)
from hf_attention.checkpoints import checkpoints_to_average, save_averaged_checkpoint
from hf_attention.cli import parse_arguments, setup_logging


@dataclass
class AveragingArguments:
    checkpoints: list[str] = field(metadata={"help": "checkpoint folders, or run folders holding checkpoint-N"})
    output_dir: str = field(metadata={"help": "where the averaged model folder is written"})
    last: int | None = field(default=None, metadata={"help": "of a run folder, the newest N checkpoints only"})


def main():
    (arguments,) = parse_arguments((AveragingArguments,))
    setup_logging()
    folders = checkpoints_to_average(arguments.checkpoints, arguments.last)
    print(save_averaged_checkpoint(folders, arguments.output_dir))


if __name__ == "__main__":
    main()
