"""Train (or fine-tune) a translation model with the Hugging Face Seq2SeqTrainer, evaluate it, save it.

    python scripts/train.py --config configs/demo.yaml [--attention_type scaled_dot] [--max_steps 500] [...]
    python scripts/train.py --config configs/demo.yaml --init_from outputs/demo --output_dir outputs/finetuned
    python scripts/train.py --config configs/demo.yaml --resume_from_checkpoint true  # newest complete checkpoint-N

Any field of ModelArguments, DataArguments (hf_attention/training.py) or Seq2SeqTrainingArguments can be set in the
YAML file or on the command line; the command line wins. The output folder is a complete checkpoint (see README).
`--resume_from_checkpoint` takes a checkpoint folder, a run folder or `true` (the output folder): a folder holding
checkpoints resumes from the newest complete one, skipping one whose save was interrupted. `--push_to_hub` uploads
the output folder's shareable files, never a pickle (`training_args.bin` holds the Hub token).
"""

import logging

import datasets
import transformers
from transformers import Seq2SeqTrainingArguments

from hf_attention.cli import parse_arguments
from hf_attention.training import DataArguments, ModelArguments, run_training


def main():
    model_args, data_args, training_args = parse_arguments((ModelArguments, DataArguments, Seq2SeqTrainingArguments))
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    # Only the main process talks at INFO; the others follow `--log_level_replica` (warning by default).
    log_level = training_args.get_process_log_level()
    logging.getLogger("hf_attention").setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    run_training(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
