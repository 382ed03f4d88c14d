"""Translate with any checkpoint (local folder or Hub id), from arguments, a file or stdin; optionally plot the
attention of the first sentence.

    python scripts/translate.py --model outputs/demo "Ich habe Hunger." "Wo ist der Bahnhof?"
    python scripts/translate.py --model outputs/demo --file sentences.de.txt --num_beams 5 > sentences.en.txt
    echo "Ich habe Hunger." | python scripts/translate.py --model outputs/demo --plot-attention attention.png
"""

import sys
from dataclasses import dataclass, field

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, HfArgumentParser

import hf_attention  # noqa: F401  (registers the model with the Auto classes)
from hf_attention.translation import align, plot_alignment, translate


@dataclass
class TranslateArguments:
    model: str = field(metadata={"help": "checkpoint folder or Hub id"})
    file: str | None = field(default=None, metadata={"help": "one sentence per line; default: arguments or stdin"})
    batch_size: int = 32
    num_beams: int | None = field(default=None, metadata={"help": "default: the checkpoint's generation config"})
    max_new_tokens: int | None = None
    plot_attention: str | None = field(default=None, metadata={"help": "PNG path for the first sentence's heatmap"})
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu")


def main():
    args, sentences = HfArgumentParser(TranslateArguments).parse_args_into_dataclasses(return_remaining_strings=True)
    if any(sentence.startswith("--") for sentence in sentences):
        raise SystemExit(f"unknown option(s): {[s for s in sentences if s.startswith('--')]}")
    if args.file is not None:
        with open(args.file, encoding="utf-8") as lines:
            sentences = [line.rstrip("\n") for line in lines]
    elif not sentences:
        sentences = [line.rstrip("\n") for line in sys.stdin]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model).to(args.device)
    generate_kwargs = {k: v for k, v in (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens)) if v}
    for translation in translate(model, tokenizer, sentences, batch_size=args.batch_size, **generate_kwargs):
        print(translation, flush=True)
    if args.plot_attention and sentences:
        alignment = align(model, tokenizer, sentences[0], **generate_kwargs)
        path = plot_alignment(alignment, args.plot_attention, title=f"{sentences[0]}\n-> {alignment.translation}")
        print(f"attention heatmap: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
