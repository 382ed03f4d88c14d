import json

import pytest
from transformers import AutoTokenizer

from hf_attention.data import (
    load_translation_corpus,
    number_pairs,
    parse_ding_line,
    read_ding_corpus,
    reversal_pairs,
    split_pairs,
    tokenize_translations,
)
from hf_attention.tokenization import train_tokenizer

# Hand-written lines in the trans-de-en format (not taken from the corpus).
DING_LINES = [
    "# comment line :: should be ignored\n",
    "Haus {n}; Gebäude {n} :: house; building\n",
    "Ich gehe nach Hause. [ugs.] | Er geht heim! :: I am going home. [coll.] | He goes home!\n",
    "Das ist gut.; Das ist schön. | Wie geht es dir? :: That is good.; That is nice. | How are you?\n",
    "Zu kurz. | Das stimmt so nicht {adj}. :: Too short. | That is not right.\n",
    "Eins zwei drei. | Vier fünf sechs. :: One two three.\n",
    "Kein Satzende hier | Noch ein Satz. :: No sentence end here | One more sentence.\n",
]


def test_parse_ding_line_rules():
    parsed = [parse_ding_line(line) for line in DING_LINES]
    assert parsed == [
        [],  # comment
        [],  # words, not sentences
        [("Ich gehe nach Hause.", "I am going home."), ("Er geht heim!", "He goes home!")],
        [("Das ist gut.", "That is good."), ("Wie geht es dir?", "How are you?")],  # first ";" alternative
        [("Das stimmt so nicht.", "That is not right.")],  # "Zu kurz." has 2 words; {adj} removed
        [],  # pieces do not correspond one to one
        [("Noch ein Satz.", "One more sentence.")],
    ]


def test_read_ding_corpus_deduplicates_and_reports_missing_file(tmp_path):
    path = tmp_path / "de-en"
    path.write_text("".join(DING_LINES + DING_LINES[2:3]), encoding="utf-8")
    pairs = read_ding_corpus(path)
    assert len(pairs) == 6 and len(set(pairs)) == 6
    with pytest.raises(FileNotFoundError, match="apt-get install -y trans-de-en"):
        read_ding_corpus(tmp_path / "missing")


def test_split_is_deterministic_and_test_sentences_are_unseen():
    pairs = [(f"quelle {i} .", f"source {i} .") for i in range(200)]
    pairs += [("quelle 5 .", "another translation .")]  # shares its source with pair 5
    first, again = split_pairs(pairs, 20, 30, seed=3), split_pairs(pairs, 20, 30, seed=3)
    assert first == again
    assert first != split_pairs(pairs, 20, 30, seed=4)
    assert (len(first["validation"]), len(first["test"])) == (20, 30)
    held_out = {sentence for split in ("validation", "test") for pair in first[split] for sentence in pair}
    assert not any(set(pair) & held_out for pair in first["train"])
    assert len(first["train"]) + 50 >= len(pairs) - 1
    with pytest.raises(ValueError, match="test_size=200"):
        split_pairs(pairs, 10, 200, seed=0)


def test_synthetic_tasks():
    for source, target in reversal_pairs(50, 4, 12, seed=1):
        assert target.split() == source.split()[::-1] and 4 <= len(source.split()) <= 12
    assert reversal_pairs(5, seed=1) == reversal_pairs(5, seed=1) != reversal_pairs(5, seed=2)
    pairs = number_pairs(3, max_number=99, seed=0)
    assert all(isinstance(english, str) and isinstance(german, str) for english, german in pairs)
    assert number_pairs(1, max_number=21, seed=0)[0] == number_pairs(1, max_number=21, seed=0)[0]
    from num2words import num2words

    assert num2words(21, lang="de") == "einundzwanzig"  # the reordering the task is about


@pytest.mark.parametrize("suffix", [".jsonl", ".tsv", ".csv"])
def test_local_files_give_translation_splits(tmp_path, suffix):
    rows = [{"de": f"Satz Nummer {i}.", "en": f"Sentence number {i}."} for i in range(40)]
    path = tmp_path / f"corpus{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"translation": row}) + "\n" for row in rows))
    else:
        separator = "\t" if suffix == ".tsv" else ","
        path.write_text("de" + separator + "en\n" + "".join(f"{r['de']}{separator}{r['en']}\n" for r in rows))
    corpus = load_translation_corpus(str(path), "de", "en", validation_size=5, test_size=5, seed=0)
    assert {name: len(split) for name, split in corpus.items()} == {"train": 30, "validation": 5, "test": 5}
    pairs = {(row["de"], row["en"]) for split in corpus.values() for row in split["translation"]}
    assert pairs == {(row["de"], row["en"]) for row in rows}


def test_local_folder_keeps_its_splits_and_bad_sources_fail_clearly(tmp_path, monkeypatch):
    for split, count in (("train", 7), ("validation", 2), ("test", 3)):
        lines = [json.dumps({"de": f"{split} {i}", "en": f"{split} {i}"}) for i in range(count)]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    corpus = load_translation_corpus(str(tmp_path), "de", "en")
    assert {name: len(split) for name, split in corpus.items()} == {"train": 7, "validation": 2, "test": 3}
    with pytest.raises(ValueError, match="columns 'fr' and 'en'"):
        load_translation_corpus(str(tmp_path), "fr", "en")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_translation_corpus(str(tmp_path / "nope.jsonl"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE=1"):
        load_translation_corpus("wmt/wmt14:de-en")


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
