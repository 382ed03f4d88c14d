"""Choose beam size and length penalty on the validation split (never on test) for a trained model.

    python scripts/tune_decoding.py --config configs/base.yaml --model outputs/demo \\
        --beam_sizes 1 3 5 8 --length_penalties 0.6 1.0 1.4 [--save true]

The preset names the corpus and its split (the same validation pairs the model was trained beside). Prints one row
per setting, best BLEU first; `--save true` writes the best setting into the model folder's generation_config.json,
which `generate`, `translate.py` and the test scoring then use.
"""

from dataclasses import dataclass, field

from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import hf_attention  # noqa: F401  (registers the model with the Auto classes)
from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.cli import parse_arguments, setup_logging
from hf_attention.evaluation import tune_decoding
from hf_attention.loading import load_corpus


@dataclass
class DecodingArguments:
    model: str = field(metadata={"help": "the trained model folder"})
    beam_sizes: list[int] = field(default_factory=lambda: [1, 3, 5, 8])
    length_penalties: list[float] = field(default_factory=lambda: [0.6, 1.0, 1.4])
    save: bool = field(default=False, metadata={"help": "write the best setting into the model's generation config"})


def main():
    decoding_args, _, data_args, training_args = parse_arguments(
        (DecodingArguments, ModelArguments, DataArguments, TranslationTrainingArguments)
    )
    setup_logging()
    model = AutoModelForSeq2SeqLM.from_pretrained(decoding_args.model)
    tokenizer = AutoTokenizer.from_pretrained(decoding_args.model)
    corpus = load_corpus(data_args)
    records = tune_decoding(
        model, tokenizer, corpus["validation"], data_args, decoding_args.beam_sizes,
        decoding_args.length_penalties, training_args.per_device_eval_batch_size,
    )  # fmt: skip
    print("| beams | length penalty | validation BLEU | chrF | seconds |\n|---|---|---|---|---|")
    for record in records:
        print(f"| {record['num_beams']} | {record['length_penalty']} | {record['bleu']:.2f} | {record['chrf']:.2f} | "
              f"{record['seconds']} |")  # fmt: skip
    if decoding_args.save:
        best = records[0]
        model.generation_config.num_beams = best["num_beams"]
        model.generation_config.length_penalty = best["length_penalty"]
        model.generation_config.save_pretrained(decoding_args.model)
        print(f"saved num_beams={best['num_beams']} length_penalty={best['length_penalty']} to {decoding_args.model}")


if __name__ == "__main__":
    main()
