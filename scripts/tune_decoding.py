"""Choose beam size and length penalty on the validation split (never on test) for a trained model.

    python scripts/tune_decoding.py --config configs/base.yaml --model outputs/demo \\
        --beam_sizes 1 3 5 8 --length_penalties 0.6 1.0 1.4 [--save true]

The validation split is the one the model was trained beside: its split settings (corpus, languages, sizes, seed)
come from the checkpoint's `training_run.json`, and a preset or command-line value that differs from them is refused.
Prints one row per setting, best BLEU first; `--save true` writes the best setting into the model folder's
generation_config.json, which `generate`, `translate.py` and the test scoring then use. Beam sizes below 1 and length
penalties that are not finite positive numbers are refused before anything is loaded.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.checkpoint_loading import CheckpointError, check_generation_config, load_checkpoint
from hf_attention.cli import given_arguments, parse_arguments, setup_logging
from hf_attention.evaluation import check_decoding_grid, trained_split_arguments, tune_decoding
from hf_attention.loading import load_corpus

PROG = Path(__file__).name


@dataclass
class DecodingArguments:
    model: str = field(metadata={"help": "the trained model folder"})
    beam_sizes: list[int] = field(default_factory=lambda: [1, 3, 5, 8])
    length_penalties: list[float] = field(default_factory=lambda: [0.6, 1.0, 1.4])
    save: bool = field(default=False, metadata={"help": "write the best setting into the model's generation config"})

    def __post_init__(self):
        check_decoding_grid(self.beam_sizes, self.length_penalties)


def main(argv: list[str] | None = None):
    try:
        decoding_args, _, data_args, training_args = parse_arguments(
            (DecodingArguments, ModelArguments, DataArguments, TranslationTrainingArguments), argv
        )
        setup_logging()
        checkpoint = load_checkpoint(decoding_args.model)
        data_args = trained_split_arguments(checkpoint, data_args, given_arguments(argv))
    except (ValueError, FileNotFoundError) as error:  # CheckpointError included
        sys.exit(f"{PROG}: error: {error}")
    corpus = load_corpus(data_args)
    records = tune_decoding(
        checkpoint.model, checkpoint.tokenizer, corpus["validation"], data_args, decoding_args.beam_sizes,
        decoding_args.length_penalties, training_args.per_device_eval_batch_size,
    )  # fmt: skip
    print("| beams | length penalty | validation BLEU | chrF | seconds |\n|---|---|---|---|---|")
    for record in records:
        print(f"| {record['num_beams']} | {record['length_penalty']} | {record['bleu']:.2f} | {record['chrf']:.2f} | "
              f"{record['seconds']} |")  # fmt: skip
    if decoding_args.save:
        best = records[0]
        generation_config = checkpoint.generation_config
        generation_config.num_beams = best["num_beams"]
        generation_config.length_penalty = best["length_penalty"]
        try:
            check_generation_config(generation_config, "the best setting")
        except CheckpointError as error:
            sys.exit(f"{PROG}: error: {error}; nothing was saved")
        generation_config.save_pretrained(decoding_args.model)
        print(f"saved num_beams={best['num_beams']} length_penalty={best['length_penalty']} to {decoding_args.model}")


if __name__ == "__main__":
    main()
