"""Train a translation model with a plain Accelerate loop, on one process or many; evaluate it, save it.

    python scripts/train_accelerate.py --config configs/demo.yaml [--max_steps 500] [...]
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml scripts/train_accelerate.py \\
        --config configs/demo.yaml --use_cpu false
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 scripts/train_accelerate.py --config ...

The same presets and arguments as scripts/train.py (ModelArguments, DataArguments in hf_attention/training.py, and
Seq2SeqTrainingArguments); `--resume_from_checkpoint OUTPUT_DIR/checkpoint-N` continues a run exactly, from a folder
you trust only: Accelerate reads the optimizer, scheduler and RNG states with `torch.load(weights_only=True)`, and the
loop's position comes from `training_progress.json` (a folder holding `custom_checkpoint_*.pkl` is refused). Secret
fields (`--hub_token`) reach no log. The loop is in hf_attention/training_accelerate.py.
"""

import logging
import os

import datasets
import transformers
from transformers import Seq2SeqTrainingArguments

from hf_attention.cli import parse_arguments
from hf_attention.training import DataArguments, ModelArguments
from hf_attention.training_accelerate import run_accelerate_training


def main():
    model_args, data_args, training_args = parse_arguments((ModelArguments, DataArguments, Seq2SeqTrainingArguments))
    # Rank from the launcher's environment: asking Accelerate now would fix its state before the run chooses it.
    is_main_process = os.environ.get("RANK", "0") == "0"
    level = logging.INFO if is_main_process else logging.WARNING
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)
    transformers.utils.logging.set_verbosity(level)
    datasets.utils.logging.set_verbosity(level)
    run_accelerate_training(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
