"""Open the attention explorer (a local web page) on a checkpoint folder or Hub id.

    python scripts/explore.py --model outputs/demo
    python scripts/explore.py --model outputs/demo --server_port 7861 --server_name 0.0.0.0   # reachable from others

The page translates a sentence and shows the cross attention (and any self-attention) of the chosen hypothesis
per layer and head, as heatmaps and as lines between the words, with each output token's probability
(docs/explorer.md). Needs the app extra: pip install 'hf-attention[app]'. A checkpoint that cannot be loaded ends
with a one-line `explore.py: error: ...` and exit status 1; bad arguments with exit status 2.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hf_attention.cli import parse_arguments

PROG = Path(__file__).name


@dataclass
class ExploreArguments:
    model: str = field(metadata={"help": "checkpoint folder or Hub id"})
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
    explorer = Explorer(args.device)
    try:
        explorer.get(args.model)  # load before serving: a missing checkpoint is an error here, not on the page
    except ExplorerError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(1)
    build_app(args.model, explorer=explorer).launch(
        server_name=args.server_name, server_port=args.server_port, share=args.share
    )


if __name__ == "__main__":
    main()
