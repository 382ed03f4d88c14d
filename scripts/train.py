"""Train (or fine-tune) a translation model with the Hugging Face Seq2SeqTrainer, evaluate it, save it.

    python scripts/train.py --config configs/base.yaml [--attention_type scaled_dot] [--max_steps 500] [...]
    python scripts/train.py --config configs/base.yaml configs/reversal.yaml  # a preset: overrides after the base
    python scripts/train.py --config configs/base.yaml --init_from outputs/demo --output_dir outputs/finetuned
    python scripts/train.py --config configs/base.yaml --resume_from_checkpoint true  # newest complete checkpoint-N

Any field of ModelArguments, DataArguments or TranslationTrainingArguments (hf_attention/arguments.py:
Seq2SeqTrainingArguments with max_train_minutes and max_tokens_per_batch) can be set in the YAML files (a later one
wins) or on the command line, which wins. The output folder is a complete checkpoint (README).
`--resume_from_checkpoint` takes a checkpoint folder, a run folder or `true` (the output folder): a folder holding
checkpoints resumes from the newest complete one, skipping one whose save was interrupted. `--push_to_hub` uploads
the output folder's shareable files, never a pickle (`training_args.bin` holds the Hub token).
"""

from accelerate import PartialState

from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.cli import parse_arguments, setup_logging
from hf_attention.training_trainer import run_training


def main():
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataArguments, TranslationTrainingArguments)
    )
    setup_logging(training_args)
    run_training(model_args, data_args, training_args)
    # Under torchrun, before the interpreter shuts down: a gloo worker thread still freeing a finished collective's
    # tensors then needs the GIL and aborts the process. Together, so that no process closes its connections while
    # another still uses them.
    state = PartialState()
    state.wait_for_everyone()
    state.destroy_process_group()


if __name__ == "__main__":
    main()
