"""The attention explorer as a Hugging Face Space (Gradio SDK): the same page as `scripts/explore.py`.

The checkpoint is the Space's variable EXPLORER_MODEL (a Hub id such as your-user/bahdanau-de-en, or a folder in
the Space), default outputs/demo; visitors can load only that one unless EXPLORER_ANY_MODEL=1.
docs/explorer.md says how to deploy. Locally: `python app.py`.
"""

import os

import hf_attention  # noqa: F401  (registers the model with the Auto classes)
from hf_attention.explorer import Explorer, build_app

MODEL = os.environ.get("EXPLORER_MODEL", "outputs/demo")
# A public page should not load (download, keep in memory) whatever checkpoint a visitor types.
ONLY = None if os.environ.get("EXPLORER_ANY_MODEL") == "1" else [MODEL]

demo = build_app(MODEL, explorer=Explorer(os.environ.get("EXPLORER_DEVICE", "cpu"), only=ONLY))

if __name__ == "__main__":
    demo.launch()
