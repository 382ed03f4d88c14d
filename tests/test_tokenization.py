"""Loading a saved tokenizer: what a damaged tokenizer.json gives."""

import json
import re

import pytest

from hf_attention.tokenization import load_tokenizer, train_tokenizer

TEXTS = ["Ich gehe nach Hause.", "I am going home.", "Wie geht es dir?", "How are you?"] * 20


@pytest.fixture
def saved(tmp_path):
    tokenizer = train_tokenizer(TEXTS, vocab_size=120, model_max_length=32)
    tokenizer.save_pretrained(tmp_path)
    return tmp_path, tokenizer


def test_load_tokenizer_gives_the_saved_tokenizer(saved):
    path, tokenizer = saved
    loaded = load_tokenizer(path)
    assert loaded("Wie geht es dir?")["input_ids"] == tokenizer("Wie geht es dir?")["input_ids"]
    assert loaded.model_max_length == 32 and loaded.pad_token_id == 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "garbage",
        lambda text: json.dumps({"model": 5}),  # JSON, but not a tokenizer
        lambda text: "",
    ],
    ids=["truncated", "garbage", "not-a-tokenizer", "empty"],
)
def test_damaged_tokenizer_json_names_the_file(saved, damage):
    path, _ = saved
    file = path / "tokenizer.json"
    file.write_text(damage(file.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(file)) + r": not a readable tokenizer file \(.+\)"):
        load_tokenizer(path)


def test_other_loading_errors_are_left_as_they_are(tmp_path):
    with pytest.raises(OSError):
        load_tokenizer(tmp_path / "missing")
