"""hf_attention.tokenization: the trained tokenizer round trip, tokenizing a corpus (limits, direction, cache
fingerprint), and what a damaged tokenizer.json gives."""

import json
import re

import pytest
from corpus_files import write_folder_corpus
from datasets import Dataset, DatasetDict
from transformers import AutoTokenizer

from hf_attention.arguments import DataArguments
from hf_attention.data import SPLITS, load_translation_corpus
from hf_attention.loading import load_corpus
from hf_attention.tokenization import load_tokenizer, tokenize_translations, train_tokenizer

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


def test_tokenize_translations_cache_follows_the_tokenizer():
    corpus = load_translation_corpus("reversal", "src", "tgt", validation_size=4, test_size=4, synthetic_size=64)
    texts = [text for row in corpus["train"]["translation"] for text in row.values()]
    small, large = train_tokenizer(texts, vocab_size=30), train_tokenizer(texts, vocab_size=60)
    first = tokenize_translations(corpus, small, "src", "tgt", 64, 64)
    second = tokenize_translations(corpus, large, "src", "tgt", 64, 64)
    assert first["train"]._fingerprint != second["train"]._fingerprint
    assert first["train"][0]["input_ids"] == small(corpus["train"][0]["translation"]["src"])["input_ids"]
    assert second["train"][0]["input_ids"] == large(corpus["train"][0]["translation"]["src"])["input_ids"]
    assert first["train"][0]["labels"][-1] == small.eos_token_id
    # Length limits: training pairs over the limit are dropped, held-out sources are truncated.
    limited = tokenize_translations(corpus, small, "src", "tgt", 8, 64)
    assert all(len(ids) <= 8 for ids in limited["train"]["input_ids"])
    assert len(limited["train"]) < len(first["train"])
    assert len(limited["test"]) == 4 and max(len(ids) for ids in limited["test"]["input_ids"]) <= 8


def test_tokenizer_round_trip_and_reload(tmp_path):
    texts = ["Ich gehe nach Hause.", "I am going home.", "Wie geht es dir?", "How are you?"] * 20
    tokenizer = train_tokenizer(texts, vocab_size=120, model_max_length=32)
    assert [tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id] == [
        0,
        1,
        2,
        3,
    ]
    encoded = tokenizer("Wie geht es dir?")["input_ids"]
    assert encoded[-1] == tokenizer.eos_token_id and tokenizer.bos_token_id not in encoded
    assert tokenizer.decode(encoded, skip_special_tokens=True) == "Wie geht es dir?"
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.model_max_length == 32
    assert reloaded("Wie geht es dir?")["input_ids"] == encoded
    assert reloaded.decode(reloaded("Ich gehe nach Hause.")["input_ids"], skip_special_tokens=True) == (
        "Ich gehe nach Hause."
    )
    with pytest.raises(ValueError, match="vocab_size=4"):
        train_tokenizer(texts, vocab_size=4)


def test_tokenized_folder_corpus_follows_the_direction(tmp_path):
    folder = write_folder_corpus(tmp_path / "corpus")
    texts = [f"das Haus {i} . the house {i} ." for i in range(6)] * 5
    tokenizer = train_tokenizer(texts, vocab_size=60, model_max_length=32)
    tokenized = {}
    for src_lang, tgt_lang in (("de", "en"), ("en", "de")):
        data_args = DataArguments(corpus=str(folder), src_lang=src_lang, tgt_lang=tgt_lang)
        tokenized[src_lang] = tokenize_translations(load_corpus(data_args), tokenizer, src_lang, tgt_lang, 32, 32)
    german, english = tokenizer("das Haus train 0 .")["input_ids"], tokenizer("the house train 0 .")["input_ids"]
    assert german != english
    assert (tokenized["de"]["train"][0]["input_ids"], tokenized["de"]["train"][0]["labels"]) == (german, english)
    assert (tokenized["en"]["train"][0]["input_ids"], tokenized["en"]["train"][0]["labels"]) == (english, german)
    for split in SPLITS:
        assert tokenized["de"][split]["input_ids"] == tokenized["en"][split]["labels"]
        assert tokenized["de"][split]["labels"] == tokenized["en"][split]["input_ids"]


def test_tokenization_fingerprint_covers_every_setting(tmp_path):
    folder = write_folder_corpus(tmp_path / "corpus")
    corpus = load_translation_corpus(str(folder), "de", "en")
    texts = [text for row in corpus["train"]["translation"] for text in row.values()] * 5
    tokenizer = train_tokenizer(texts, vocab_size=60, model_max_length=32)
    other = train_tokenizer(texts, vocab_size=40, model_max_length=32)

    def fingerprints(tokenizer=tokenizer, src_lang="de", tgt_lang="en", max_source_length=32, max_target_length=32):
        tokenized = tokenize_translations(corpus, tokenizer, src_lang, tgt_lang, max_source_length, max_target_length)
        return {name: split._fingerprint for name, split in tokenized.items()}

    base = fingerprints()
    assert base == fingerprints()  # the cache is still reused when nothing changes
    assert len(set(base.values())) == 3  # one per split
    variants = [
        fingerprints(src_lang="en", tgt_lang="de"),
        fingerprints(tokenizer=other),
        fingerprints(max_source_length=8),
        fingerprints(max_target_length=8),
    ]
    for variant in variants:
        assert all(variant[name] != base[name] for name in SPLITS), variant


def test_bpe_dropout_resegments_training_sources_only():
    sentences = ["Das Wetter ist heute schön", "Wir fahren morgen nach Berlin", "Die Katze schläft im Garten"]
    rows = [{"de": source, "en": source.lower()} for source in sentences]
    corpus = DatasetDict({name: Dataset.from_dict({"translation": rows * 20}) for name in SPLITS})
    tokenizer = train_tokenizer([text for row in rows * 20 for text in row.values()], vocab_size=120)
    plain = tokenize_translations(corpus, tokenizer, "de", "en", 64, 64)
    dropped = tokenize_translations(corpus, tokenizer, "de", "en", 64, 64, bpe_dropout=0.3, bpe_dropout_copies=3)
    assert len(dropped["train"]) == 3 * len(plain["train"])
    for name in ("validation", "test"):
        assert list(dropped[name]["input_ids"]) == list(plain[name]["input_ids"])
    assert (
        list(dropped["train"]["labels"]) == list(plain["train"]["labels"]) * 3
    )  # targets keep the deterministic segmentation
    sources, references = list(dropped["train"]["input_ids"]), list(plain["train"]["input_ids"]) * 3
    assert sum(ids != reference for ids, reference in zip(sources, references, strict=True)) > 30
    # Another segmentation of the same text: decoding gives the sentence back.
    assert {tokenizer.decode(ids, skip_special_tokens=True) for ids in sources} == set(sentences)
    assert tokenizer.backend_tokenizer.model.dropout is None  # the tokenizer that is saved is left as it was
    with pytest.raises(ValueError, match=r"bpe_dropout=1.0 must be in \[0, 1\)"):
        tokenize_translations(corpus, tokenizer, "de", "en", 64, 64, bpe_dropout=1.0)
