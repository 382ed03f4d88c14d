import functools
import gzip
import json
import re

import pytest
from corpus_files import write_folder_corpus

from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.data import (
    SPLITS,
    load_translation_corpus,
    number_pairs,
    parse_ding_lexicon_line,
    parse_ding_line,
    read_ding_corpus,
    read_ding_lexicon,
    reversal_pairs,
    split_overlap,
    split_pairs,
)
from hf_attention.loading import load_corpus
from hf_attention.run_record import write_run_record

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


def test_parse_ding_lexicon_line_takes_the_pieces_that_are_not_sentences():
    parsed = [parse_ding_lexicon_line(line) for line in DING_LINES]
    assert parsed == [
        [],  # comment
        [("Haus", "house")],
        [],  # sentences only
        [],
        [("Zu kurz.", "Too short.")],  # two words: not a sentence
        [],  # pieces do not correspond one to one
        [("Kein Satzende hier", "No sentence end here")],
    ]
    line = "Hochschule /HS/ (Bildung) | Geckos <Gecko> | (veraltet) :: college (education) | geckos | rare\n"
    assert parse_ding_lexicon_line(line) == [("Hochschule", "college"), ("Geckos", "geckos")]


def _ding_file_with_headwords(path, count):
    lines = [f"Wort{i} {{n}} | Satz Nummer {i} hier. :: word{i} | sentence number {i} here.\n" for i in range(count)]
    path.write_text("".join(lines), encoding="utf-8")


def test_lexicon_pairs_join_training_without_the_held_out_lines(tmp_path, monkeypatch):
    path = tmp_path / "de-en"
    _ding_file_with_headwords(path, 40)
    monkeypatch.setattr("hf_attention.data.DING_PATH", path)
    plain = load_translation_corpus("ding", validation_size=3, test_size=4, seed=1)
    held_out = {row["de"] for name in ("validation", "test") for row in plain[name]["translation"]}
    held_out_numbers = {sentence.split()[2] for sentence in held_out}
    assert read_ding_lexicon(path, held_out) == [
        (f"Wort{i}", f"word{i}") for i in range(40) if str(i) not in held_out_numbers
    ]

    with_lexicon = load_translation_corpus("ding", validation_size=3, test_size=4, seed=1, ding_lexicon_size=20)
    for name in ("validation", "test"):
        assert with_lexicon[name]["translation"] == plain[name]["translation"]
    train = with_lexicon["train"]["translation"]
    assert train[:33] == plain["train"]["translation"]
    lexicon = [(row["de"], row["en"]) for row in train[33:]]
    assert len(lexicon) == len(set(lexicon)) == 20
    assert all(german.startswith("Wort") and german[4:] not in held_out_numbers for german, _ in lexicon)
    again = load_translation_corpus("ding", validation_size=3, test_size=4, seed=1, ding_lexicon_size=20)
    assert again["train"]["translation"] == train

    reverse = load_translation_corpus(
        "ding", src_lang="en", tgt_lang="de", validation_size=3, test_size=4, seed=1, ding_lexicon_size=20
    )
    assert [(row["de"], row["en"]) for row in reverse["train"]["translation"][33:]] == lexicon

    with pytest.raises(ValueError, match=r"ding_lexicon_size=34: the Ding file .* has 0 to 33 lexicon pairs"):
        load_translation_corpus("ding", validation_size=3, test_size=4, seed=1, ding_lexicon_size=34)
    with pytest.raises(ValueError, match="ding_lexicon_size=5 needs the Ding corpus, not --corpus 'reversal'"):
        load_translation_corpus("reversal", ding_lexicon_size=5)


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


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"translation": {"de": "ein Satz ."}}', r"line 3: no 'en' text; expected a string"),
        ('{"de": "ein Satz ."}', r"line 3: no 'en' text; expected a string"),
        ('{"translation": {"de": "ein Satz .", "en": null}}', r"line 3: no 'en' text; expected a string"),
        ('{"de": null, "en": "a sentence ."}', r"line 3: no 'de' text; expected a string"),
        ('{"translation": null}', r"line 3: no 'de' text; expected a string"),
    ],
)
def test_jsonl_rows_without_text_name_the_file_and_line(tmp_path, line, expected):
    good = json.dumps({"de": "das Haus .", "en": "the house ."})
    if line.startswith('{"translation"'):
        good = json.dumps({"translation": {"de": "das Haus .", "en": "the house ."}})
    path = tmp_path / "corpus.jsonl"
    # A blank line counts: the message gives the line number an editor shows.
    path.write_text("\n".join([good, "", line, good, good, good]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + expected):
        load_translation_corpus(str(path), "de", "en", validation_size=1, test_size=1)


def test_jsonl_split_file_without_text_names_its_file(tmp_path):
    folder = write_folder_corpus(tmp_path / "corpus")
    lines = (folder / "test.jsonl").read_text(encoding="utf-8").splitlines()
    lines[4] = json.dumps({"translation": {"de": "nur Deutsch ."}})
    (folder / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(folder / "test.jsonl")) + ": line 5: no 'en' text"):
        load_translation_corpus(str(folder), "de", "en")
    # A key that no row has is named with the keys that were found.
    with pytest.raises(ValueError, match=r"columns 'fr' and 'en'|no 'fr' text"):
        load_translation_corpus(str(folder), "fr", "en")


def test_jsonl_with_non_utf8_bytes_names_the_file_and_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    good = json.dumps({"de": "das Haus .", "en": "the house ."}).encode()
    bad = b'{"de": "Stra' + "ße".encode("latin-1") + b'", "en": "street"}'
    path.write_bytes(b"\n".join([good, good, bad, good, good]) + b"\n")
    with pytest.raises(ValueError, match=re.escape(str(path)) + r": line 3 is not UTF-8 text .*byte 0xdf"):
        load_translation_corpus(str(path), "de", "en", validation_size=1, test_size=1)


def test_csv_with_non_utf8_bytes_names_the_file_and_line(tmp_path):
    path = tmp_path / "corpus.csv"
    path.write_bytes(b"de,en\nHaus,house\nStra\xdfe,street\nBaum,tree\n")
    with pytest.raises(ValueError, match=re.escape(str(path)) + r": line 3 is not UTF-8 text .*byte 0xdf"):
        load_translation_corpus(str(path), "de", "en", validation_size=1, test_size=1)


def test_reversal_lengths_reach_the_corpus():
    corpus = load_translation_corpus("reversal", "src", "tgt", validation_size=5, test_size=50, synthetic_size=50,
                                     synthetic_min_length=40, synthetic_max_length=60)  # fmt: skip
    lengths = [len(pair["src"].split()) for split in corpus.values() for pair in split["translation"]]
    assert min(lengths) >= 40 and max(lengths) <= 60 and max(lengths) > 55
    default = load_translation_corpus("reversal", "src", "tgt", validation_size=5, test_size=5, synthetic_size=50)
    assert {len(pair["src"].split()) for pair in default["train"]["translation"]} <= set(range(4, 13))
    with pytest.raises(ValueError, match="synthetic_min_length=9 and synthetic_max_length=5"):
        load_translation_corpus("reversal", "src", "tgt", synthetic_min_length=9, synthetic_max_length=5)
    with pytest.raises(ValueError, match="apply to the reversal task only, not to 'numbers'"):
        load_translation_corpus("numbers", "en", "de", synthetic_max_length=30)


def _all_pairs(corpus):
    return sorted((row["de"], row["en"]) for split in corpus.values() for row in split["translation"])


def _fillers(count, separator):
    return "".join(f"Satz {i}{separator}sentence {i}\n" for i in range(count))


def _load(path, **sizes):
    return load_translation_corpus(str(path), "de", "en", **{"validation_size": 1, "test_size": 1, **sizes})


def test_tsv_texts_are_read_exactly_as_written(tmp_path):
    path = tmp_path / "corpus.tsv"
    lines = ['"a ""quoted"" word"\tein Wort', '"opens a quote\tand no end', "ends one\"\t'single", "NA\tnull",
             "None\tNaN", "n/a\t#N/A", "Komma, hier\tcomma, here"]  # fmt: skip
    # A byte order mark and Windows line ends: neither reaches a text.
    path.write_bytes(("\ufeffde\ten\r\n" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    assert _all_pairs(_load(path)) == sorted(tuple(line.split("\t")) for line in lines)


def test_csv_follows_rfc4180_and_keeps_na_strings(tmp_path):
    path = tmp_path / "corpus.csv"
    path.write_text(
        'de,en\n"a ""quoted"" word","ein, Wort"\n"tab\tinside",x\nNA,null\nNone,NaN\nmid"quote,""\n'
        'plain "quotes" inside,1\n',
        encoding="utf-8",
    )
    assert _all_pairs(_load(path)) == sorted(
        [
            ('a "quoted" word', "ein, Wort"),
            ("tab\tinside", "x"),
            ("NA", "null"),
            ("None", "NaN"),
            ('plain "quotes" inside', "1"),
        ]  # fmt: skip
    )  # 'mid"quote,""' has an empty English side: dropped, with a warning


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("c.tsv", "de\ten\nHaus\thouse\nBaum\ttree\tthree\n", r"line 3 has 3 tab-separated fields, the header .* 2"),
        ("c.tsv", "de\ten\nHaus\thouse\nBaum tree\n", r"line 3 has 1 tab-separated fields"),
        ("c.tsv", "de\ten\n\nHaus\thouse\t\n", r"line 3 has 3 tab-separated fields \(a trailing separator\?\)"),
        ("c.tsv", "de\ten\nHaus\thouse\nde\ten\nBaum\ttree\n", r"line 3 repeats the header line"),
        ("c.tsv", "de\tde\nHaus\thouse\n", r"line 1: the header line must name each column once"),
        ("c.csv", 'de,en\nHaus,house\n"Baum,tree\nAuto,car\n', r"line 3: not valid CSV \(unexpected end of data\)"),
        ("c.csv", 'de,en\nHaus,house\n"Hallo" sagte er,"Hello" he said\n', r"line 3: not valid CSV"),
        ("c.csv", 'de,en\nHaus,house\n"Baum\nAuto",car\nRad,wheel\n', r"lines 3-4 make one CSV row"),
        ("c.csv", "de,en\nHaus,house,Haus\n", r"line 2 has 3 comma-separated fields"),
    ],
)
def test_malformed_tsv_and_csv_lines_name_file_and_line(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + expected):
        _load(path)


def test_empty_sources_and_splits_name_the_file_and_counts(tmp_path):
    cases = {
        "empty.tsv": ("", r"the file is empty; expected a header line naming the columns \(e.g. de<TAB>en\)"),
        "empty.csv": ("", r"the file is empty; expected a header line naming the columns \(e.g. de,en\)"),
        "empty.jsonl": ("\n", r"the file is empty; expected one JSON object a line"),
        "empty.json": ("[]", r"no pairs$"),
        "header.tsv": ("de\ten\n\n", r"no pairs after the header line \['de', 'en'\] \(line 1\)"),
        "blank.tsv": ("de\ten\n \t \n\t\nx\t \n", r"no pairs: all 1 rows have an empty 'de' or 'en' text"),
        "same.tsv": (
            "de\ten\n" + "Haus\thouse\n" * 9,
            r"1 distinct pairs in 9 rows: validation_size=1 and test_size=1",
        ),
        "few.csv": ("de,en\n" + _fillers(4, ","), r"4 distinct pairs in 4 rows: validation_size=2 and test_size=2"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        sizes = {"validation_size": 2, "test_size": 2} if name == "few.csv" else {}
        with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + expected):
            _load(path, **sizes)
    # Pairs that all share a source leave no training pair once the held-out ones are set apart.
    path = tmp_path / "shared.tsv"
    path.write_text("de\ten\n" + "".join(f"Haus\thouse {i}\n" for i in range(9)), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + r": 9 distinct pairs in 9 rows: .* leave no training"):
        _load(path)

    folder = tmp_path / "folder"
    folder.mkdir()
    for split in SPLITS:
        (folder / f"{split}.tsv").write_text("de\ten\n" + _fillers(3, "\t"), encoding="utf-8")
    (folder / "validation.tsv").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(folder / "validation.tsv")) + ": the file is empty"):
        _load(folder)
    (folder / "validation.tsv").write_text("de\ten\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(folder / "validation.tsv")) + ": no pairs after the header"):
        _load(folder)
    (folder / "validation.tsv").write_text("de\ten\n\tnur Englisch\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(folder / "validation.tsv")) + ": no pairs: all 1 rows"):
        _load(folder)


def test_pairs_with_an_empty_side_are_dropped_with_a_count(tmp_path, caplog):
    path = tmp_path / "corpus.jsonl"
    rows = [{"de": f"Satz {i}", "en": f"sentence {i}"} for i in range(6)]
    rows[2:2] = [{"de": "", "en": "no German"}, {"de": "kein Englisch", "en": " \t"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with caplog.at_level("WARNING", logger="hf_attention.data"):
        corpus = _load(path)
    assert _all_pairs(corpus) == sorted((f"Satz {i}", f"sentence {i}") for i in range(6))
    assert f"{path}: 2 pairs with an empty 'de' or 'en' text dropped (the first at line 3)" in caplog.messages


def test_a_single_file_keeps_each_pair_once_and_says_how_many_it_dropped(tmp_path, caplog):
    path = tmp_path / "corpus.tsv"
    path.write_text("de\ten\n" + _fillers(10, "\t") + _fillers(4, "\t"), encoding="utf-8")
    with caplog.at_level("WARNING", logger="hf_attention.data"):
        corpus = _load(path, validation_size=2, test_size=2)
    assert f"{path}: 4 duplicate pairs dropped, each pair is kept once" in caplog.messages
    assert {name: len(split) for name, split in corpus.items()} == {"train": 6, "validation": 2, "test": 2}
    assert _all_pairs(corpus) == sorted((f"Satz {i}", f"sentence {i}") for i in range(10))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('["Haus", "house"]', r"line 3 is a JSON list, expected an object"),
        ('{"de": "Haus", "en": }', r"line 3 is not valid JSON \(Expecting value at column 22\)"),
        ('{"de": 42, "en": "forty-two"}', r"line 3: the 'de' text is 42, not a string"),
    ],
)
def test_jsonl_lines_that_are_not_text_pairs_name_the_line(tmp_path, line, expected):
    good = [json.dumps({"de": f"Satz {i}", "en": f"sentence {i}"}) for i in range(4)]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join([*good[:2], line, *good[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + expected):
        _load(path)


def test_jsonl_of_numbers_names_the_first_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n\n" + "".join(json.dumps({"de": i, "en": i}) + "\n" for i in range(5)), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + r": line 3: the 'de' text is 0, not a string"):
        _load(path)


def test_folder_and_file_type_mistakes_are_named(tmp_path):
    folder = write_folder_corpus(tmp_path / "corpus")
    (folder / "test.tsv").write_text("de\ten\nHaus\thouse\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"the test split is in 2 files, \['test.jsonl', 'test.tsv'\]; keep one"):
        _load(folder)
    (folder / "test.tsv").unlink()
    (folder / "test.jsonl").rename(folder / "dev.jsonl")
    with pytest.raises(FileNotFoundError, match=r"no test.jsonl/.json/.tsv/.csv file in this folder \(it holds \["):
        _load(folder)
    path = tmp_path / "corpus.tsv.gz"
    path.write_bytes(gzip.compress(b"de\ten\nHaus\thouse\n"))
    with pytest.raises(ValueError, match=r"unsupported file type '.gz'; .* \(uncompress it first\)"):
        _load(path)


def test_a_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / "corpus.tsv"
    path.write_text("de\ten\n" + _fillers(6, "\t"), encoding="utf-8")
    assert ("Satz 1", "sentence 1") in _all_pairs(_load(path))
    # Same size, same modification time tick: only the content differs.
    path.write_text("de\ten\n" + _fillers(6, "\t").replace("Satz", "Sotz"), encoding="utf-8")
    assert ("Sotz 1", "sentence 1") in _all_pairs(_load(path))


def _overlapping_folder(folder, shared_validation, shared_test):
    """Train of 100 pairs; validation and test of 50, whose first pairs repeat training sources (the first
    `shared_*` // 2 with the training target too, the rest with another target)."""
    folder.mkdir()
    train = [(f"Satz {i}", f"sentence {i}") for i in range(100)]
    held_out = {}
    for split, shared in (("validation", shared_validation), ("test", shared_test)):
        rows = [(src, tgt if i < shared // 2 else f"other {i}") for i, (src, tgt) in enumerate(train[:shared])]
        held_out[split] = rows + [(f"{split} {i}", f"{split} {i}") for i in range(50 - shared)]
    for split, rows in {"train": train, **held_out}.items():
        (folder / f"{split}.tsv").write_text("de\ten\n" + "".join(f"{s}\t{t}\n" for s, t in rows), encoding="utf-8")
    return folder


def test_split_overlap_counts_shared_sources_and_pairs(tmp_path):
    corpus = _load(_overlapping_folder(tmp_path / "corpus", 4, 1))
    assert split_overlap(corpus, "de", "en") == {
        "validation": {"size": 50, "sources": 4, "pairs": 2, "source_share": 0.08, "pair_share": 0.04},
        "test": {"size": 50, "sources": 1, "pairs": 0, "source_share": 0.02, "pair_share": 0.0},
    }
    assert split_overlap({"train": corpus["train"]}, "de", "en") == {}


def test_load_corpus_refuses_held_out_sources_seen_in_training_unless_allowed(tmp_path, caplog):
    folder = _overlapping_folder(tmp_path / "corpus", 4, 0)
    arguments = DataArguments(corpus=str(folder))
    expected = (
        re.escape(str(folder)) + r": 4 of the 50 validation pairs \(8.0%\) have a source sentence that is also in "
        r"train \(2 are whole training pairs\), above the 1% limit.*--allow_split_overlap true"
    )
    with pytest.raises(ValueError, match=expected):
        load_corpus(arguments)
    with caplog.at_level("WARNING", logger="hf_attention.data"):
        corpus = load_corpus(DataArguments(corpus=str(folder), allow_split_overlap=True))
    assert len(corpus["validation"]) == 50
    assert any("4 of the 50 validation pairs" in message for message in caplog.messages)
    # Half a percent is under the limit.
    assert len(load_corpus(DataArguments(corpus=str(_overlapping_folder(tmp_path / "small", 0, 0))))["test"]) == 50


def test_package_made_splits_never_share_a_source_with_train(tmp_path, monkeypatch):
    # A file whose sources repeat with other targets: held-out sources stay out of train.
    path = tmp_path / "corpus.tsv"
    path.write_text("de\ten\n" + "".join(f"Satz {i % 20}\tsentence {i}\n" for i in range(100)), encoding="utf-8")
    overlap = split_overlap(_load(path, validation_size=5, test_size=5), "de", "en")
    assert [counts["sources"] for counts in overlap.values()] == [0, 0]
    # Synthetic tasks over small spaces repeat sources often; their held-out pairs are drawn from the unseen ones.
    reversal = load_translation_corpus(
        "reversal", "src", "tgt", validation_size=100, test_size=100, synthetic_size=3000,
        synthetic_min_length=3, synthetic_max_length=3,
    )  # fmt: skip
    assert [counts["sources"] for counts in split_overlap(reversal, "src", "tgt").values()] == [0, 0]
    validation = {row["src"] for row in reversal["validation"]["translation"]}
    assert not validation & {row["src"] for row in reversal["test"]["translation"]}
    assert {len(split) for split in reversal.values()} == {100, 3000}
    few_numbers = functools.partial(number_pairs, max_number=3000)
    monkeypatch.setattr("hf_attention.data.number_pairs", lambda count, seed: few_numbers(count, seed=seed))
    numbers = load_translation_corpus("numbers", "en", "de", validation_size=50, test_size=50, synthetic_size=2000)
    assert [counts["sources"] for counts in split_overlap(numbers, "en", "de").values()] == [0, 0]
    assert numbers["train"]["translation"] == [{"en": en, "de": de} for en, de in few_numbers(2000, seed=0)]
    with pytest.raises(ValueError, match=r"the reversal task gives only 0 pairs .* short of the 5 to hold out"):
        load_translation_corpus("reversal", "src", "tgt", validation_size=5, test_size=5, synthetic_size=2000,
                                synthetic_min_length=1, synthetic_max_length=1)  # fmt: skip


def test_run_record_keeps_the_split_overlap(tmp_path):
    corpus = _load(_overlapping_folder(tmp_path / "corpus", 4, 1))
    data_args = DataArguments(corpus=str(tmp_path / "corpus"), allow_split_overlap=True)
    training_args = TranslationTrainingArguments(output_dir=str(tmp_path / "run"), report_to=[])
    path = write_run_record(tmp_path / "run", ModelArguments(), data_args, training_args, corpus, 1, "cpu")
    record = json.loads(path.read_text())
    assert record["split_overlap"] == split_overlap(corpus, "de", "en")
    assert record["split_overlap"]["validation"]["sources"] == 4
    assert record["data_arguments"]["allow_split_overlap"] is True


def test_settings_that_leave_a_split_empty_are_refused():
    pairs = [(f"quelle {i} .", f"source {i} .") for i in range(20)]
    with pytest.raises(ValueError, match="validation_size=0 and test_size=5 must be >= 1 and leave training pairs"):
        split_pairs(pairs, 0, 5, seed=0)
    with pytest.raises(ValueError, match="validation_size=5 and test_size=0 must be >= 1"):
        split_pairs(pairs, 5, 0, seed=0)
    with pytest.raises(ValueError, match=r"synthetic_size=10, validation_size=0 and test_size=5: every split"):
        load_translation_corpus("reversal", "src", "tgt", validation_size=0, test_size=5, synthetic_size=10)
    with pytest.raises(ValueError, match=r"synthetic_size=0, validation_size=5 and test_size=5: every split"):
        load_translation_corpus("reversal", "src", "tgt", validation_size=5, test_size=5, synthetic_size=0)
