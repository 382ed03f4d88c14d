"""Train a translation model with a plain Accelerate loop, on one process or many; evaluate it, save it.

    python scripts/train_accelerate.py --config configs/base.yaml [--max_steps 500] [...]
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml scripts/train_accelerate.py \\
        --config configs/base.yaml --use_cpu false
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 scripts/train_accelerate.py --config ...

The same presets and arguments as scripts/train.py (ModelArguments, DataArguments, TranslationTrainingArguments in
hf_attention/arguments.py; --max_train_minutes stops every process at the same step); `--resume_from_checkpoint
OUTPUT_DIR/checkpoint-N` continues a run exactly, from a folder you trust only: Accelerate reads the optimizer,
scheduler and RNG states with `torch.load(weights_only=True)`, and the
loop's position comes from `training_progress.json` (a folder holding `custom_checkpoint_*.pkl` is refused). Secret
fields (`--hub_token`) reach no log. The loop is in hf_attention/training_accelerate.py.
"""

from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.cli import parse_arguments, setup_logging
from hf_attention.training_accelerate import run_accelerate_training


def main():
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataArguments, TranslationTrainingArguments)
    )
    setup_logging()  # INFO on the main process, WARNING on the others, whatever --log_level says
    run_accelerate_training(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
