"""Open the attention explorer (a local web page) on one or more checkpoint folders or Hub ids.

    python scripts/explore.py --model outputs/demo
    python scripts/explore.py --model outputs/demo --model outputs/transformer --server_name 0.0.0.0   # others too

The page translates a sentence and shows the cross attention (and any self-attention) of the chosen hypothesis
per layer and head, as heatmaps and as lines between the words, with each output token's probability
(docs/explorer.md). It serves the `--model` checkpoints only (a list on the page; any other name is refused), all
loaded before the page is served. Needs the app extra: pip install 'hf-attention[app]'. A checkpoint that cannot
be loaded ends with a one-line `explore.py: error: ...` and exit status 1; bad arguments with exit status 2.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hf_attention.cli import parse_arguments

PROG = Path(__file__).name
LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")


@dataclass
class ExploreArguments:
    # "extend": `--model A --model B` and `--model A B` both serve A and B (a plain list keeps the last flag's only).
    model: list[str] = field(
        metadata={"help": "checkpoint folder or Hub id the page serves; repeat for several", "action": "extend"}
    )
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu")
    server_name: str = field(default="127.0.0.1", metadata={"help": "0.0.0.0 to serve other machines"})
    server_port: int | None = field(default=None, metadata={"help": "default: Gradio's (7860, or the next free)"})
    share: bool = field(default=False, metadata={"help": "a temporary public gradio.live link"})


def main(argv: list[str] | None = None) -> None:
    try:
        (args,) = parse_arguments((ExploreArguments,), argv)
    except ValueError as error:
        sys.exit(f"{PROG}: error: {error}")
    try:
        from hf_attention.explorer import Explorer, ExplorerError, build_app
    except ImportError as error:
        sys.exit(f"{PROG}: error: {error.name} is missing: pip install 'hf-attention[app]'")
    try:
        explorer = Explorer(args.model, args.device)  # loads them all: a bad checkpoint stops here, not on the page
    except ExplorerError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(1)
    served = ", ".join(explorer.names)
    print(f"{PROG}: serving {len(explorer.names)} model(s), the only ones a visitor can pick: {served}")
    if args.share or args.server_name not in LOCAL_ADDRESSES:
        where = "through a gradio.live link" if args.share else f"at {args.server_name}"
        print(f"{PROG}: the page is reachable from other machines {where}; it serves those models and no other")
    build_app(explorer).launch(server_name=args.server_name, server_port=args.server_port, share=args.share)


if __name__ == "__main__":
    main()
