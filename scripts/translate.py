"""Translate with any checkpoint (local folder or Hub id), from arguments, a file or stdin; optionally plot the
attention of the first sentence.

    python scripts/translate.py --model outputs/demo "Ich habe Hunger." "Wo ist der Bahnhof?"
    python scripts/translate.py --model outputs/demo --file sentences.de.txt --num_beams 5 > sentences.en.txt
    python scripts/translate.py --model outputs/demo --file sentences.de.txt --bf16 true  # CPUs with bf16, GPUs
    python scripts/translate.py --model outputs/demo --file sentences.de.txt --quantize int8  # CPUs without bf16
    echo "Ich habe Hunger." | python scripts/translate.py --model outputs/demo --plot-attention attention.png

A sentence longer than the tokenizer's `model_max_length` is truncated to it, with a warning on stderr naming the
sentence (0-based) and its length. Bad arguments end with a one-line `translate.py: error: ...` and exit status 2; a
checkpoint that cannot be loaded with exit status 1.
"""

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser

from hf_attention.checkpoint_loading import CheckpointError, load_checkpoint
from hf_attention.translation import align, plot_alignments, quantize_int8, translate

PROG = Path(__file__).name


@dataclass
class TranslateArguments:
    model: str = field(metadata={"help": "checkpoint folder or Hub id"})
    file: str | None = field(default=None, metadata={"help": "one sentence per line; default: arguments or stdin"})
    batch_size: int = 32
    num_beams: int | None = field(default=None, metadata={"help": "default: the checkpoint's generation config"})
    max_new_tokens: int | None = None
    plot_attention: str | None = field(
        default=None,
        metadata={"help": "PNG path for the first sentence's heatmap (top decoder layer; other layers beside it)"},
    )
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu")
    bf16: bool = field(default=False, metadata={"help": "translate under bf16 autocast (weights stay float32)"})
    quantize: str | None = field(
        default=None, metadata={"help": "int8: int8 weights for CPU inference (translation.quantize_int8)"}
    )

    def __post_init__(self):
        for name in ("batch_size", "num_beams", "max_new_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                default = "" if name == "batch_size" else ", or leave it out for the checkpoint's generation config"
                raise ValueError(f"--{name} {value}: expected a whole number >= 1{default}")
        if self.quantize not in (None, "int8"):
            raise ValueError(f"--quantize {self.quantize}: expected int8, or leave it out for the float model")
        if self.quantize and self.bf16:
            raise ValueError(
                f"--quantize {self.quantize} and --bf16 true exclude each other: int8 kernels take float32"
            )
        if self.quantize and self.device != "cpu":
            raise ValueError(f"--quantize {self.quantize} runs on CPUs only: pass --device cpu (got {self.device})")
        # A path (not a Hub id) that is not a folder: the Hub client would report it as a malformed repo id.
        if self.model.startswith(("/", ".", "~")) and not Path(self.model).expanduser().is_dir():
            raise FileNotFoundError(f"--model {self.model}: no such checkpoint folder")
        if self.file is not None and not Path(self.file).is_file():
            raise FileNotFoundError(f"--file {self.file}: no such file")


def read_sentences(path: str, parser: HfArgumentParser) -> list[str]:
    """The lines of `path`, as written (utf-8-sig: a byte-order mark is not part of the first sentence); a file that
    is not UTF-8 ends the script naming the line."""
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                parser.exit(2, f"{PROG}: error: --file {path}: line {number} is not UTF-8 text ({error.reason})\n")
    with open(path, encoding="utf-8-sig") as lines:
        return [line.rstrip("\n") for line in lines]


def main(argv: list[str] | None = None):
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    parser = HfArgumentParser(TranslateArguments, prog=PROG)
    try:
        args, sentences = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except (ValueError, FileNotFoundError) as error:
        # One line, as argparse reports its own errors, rather than a traceback through the dataclass.
        parser.exit(2, f"{PROG}: error: {error}\n")
    if any(sentence.startswith("--") for sentence in sentences):
        parser.exit(2, f"{PROG}: error: unknown option(s): {[s for s in sentences if s.startswith('--')]}\n")
    if args.file is not None:
        sentences = read_sentences(args.file, parser)
    elif not sentences:
        sentences = [line.rstrip("\n") for line in sys.stdin]
    try:
        checkpoint = load_checkpoint(args.model, device=args.device)
    except CheckpointError as error:
        parser.exit(1, f"{PROG}: error: {error}\n")
    model, tokenizer = checkpoint.model, checkpoint.tokenizer
    if args.quantize:
        model = quantize_int8(model)
    settings = (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens))
    generate_kwargs = {name: value for name, value in settings if value is not None}
    alignment = None
    with torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16, enabled=args.bf16):
        for translation in translate(model, tokenizer, sentences, batch_size=args.batch_size, **generate_kwargs):
            print(translation, flush=True)
        if args.plot_attention and sentences:
            alignment = align(model, tokenizer, sentences[0], **generate_kwargs)
    if alignment is not None:
        title = f"{sentences[0]}\n-> {alignment.translation}"
        for path in plot_alignments(alignment, args.plot_attention, title=title):
            print(f"attention heatmap: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
