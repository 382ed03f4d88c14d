"""Corpus files written by tests."""

import json

from hf_attention.data import SPLITS


def write_folder_corpus(folder, rows_per_split=6):
    """A train/validation/test folder of `{"translation": {"de": ..., "en": ...}}` JSON lines."""
    folder.mkdir()
    for split in SPLITS:
        lines = [
            json.dumps({"translation": {"de": f"das Haus {split} {i} .", "en": f"the house {split} {i} ."}})
            for i in range(rows_per_split)
        ]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
