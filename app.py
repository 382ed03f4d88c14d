"""The attention explorer as a Hugging Face Space (Gradio SDK): the same page as `scripts/explore.py`.

The checkpoints are the Space's variable EXPLORER_MODEL: a Hub id such as your-user/bahdanau-de-en, or a folder in
the Space, several separated by commas; default outputs/demo. Visitors pick among those only.
docs/explorer.md says how to deploy. Locally: `python app.py`.
"""

import os
import sys

import hf_attention  # noqa: F401  (registers the model with the Auto classes)
from hf_attention.explorer import Explorer, ExplorerError, build_app

MODELS = [name.strip() for name in os.environ.get("EXPLORER_MODEL", "outputs/demo").split(",") if name.strip()]

try:
    explorer = Explorer(MODELS, os.environ.get("EXPLORER_DEVICE", "cpu"))
except ExplorerError as error:
    sys.exit(f"app.py: error: {error}")  # one line in the Space's log instead of a traceback
demo = build_app(explorer)

if __name__ == "__main__":
    demo.launch()
