"""Translation corpora as `datasets.DatasetDict`s of `{"translation": {src_lang: ..., tgt_lang: ...}}` rows.

Sources, all behind `load_translation_corpus(corpus=...)`:
- `"ding"` (the default): the human sentence pairs of Debian's `trans-de-en` package (the Ding German-English
  dictionary, GPL-2+), read from the installed file and split deterministically. The corpus is never copied into
  this repository.
- a local `.jsonl` / `.json` / `.tsv` / `.csv` file, or a folder holding `train`, `validation` and `test` files of
  one of those formats: JSON read with `datasets.load_dataset`, TSV and CSV with `read_delimited` (a header line
  naming the columns, then one pair a line; TSV has no quoting, CSV is RFC 4180; every text is kept as written);
- `"reversal"` and `"numbers"`: seeded synthetic tasks, generated on the fly;
- anything else is taken as a Hugging Face Hub dataset id with a `translation` column.

`tokenization.tokenize_translations` turns a corpus into model inputs.
"""

import csv
import hashlib
import json
import logging
import os
import random
import re
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict
from datasets.exceptions import DatasetGenerationError
from datasets.fingerprint import Hasher

logger = logging.getLogger(__name__)

DING_PATH = Path("/usr/share/trans/de-en")
SYNTHETIC_CORPORA = ("reversal", "numbers")
LOCAL_FORMATS = (".jsonl", ".json", ".tsv", ".csv")
DELIMITED_FORMATS = (".tsv", ".csv")
SPLITS = ("train", "validation", "test")
# Above this share of a held-out split's sources also in train, held-out scores measure memorisation.
OVERLAP_LIMIT = 0.01

# Ding annotations: {f} {pl} {adj} (grammar) and [Br.] [ugs.] (usage); they are not part of the sentence.
_ANNOTATION = re.compile(r"\s*(\{[^}]*\}|\[[^\]]*\])")
_SENTENCE_END = (".", "?", "!")
# Remarks of word entries: "(einer Maschine)", "/TH/", "<Gecko>"; sentences keep their parentheses.
_LEXICON_REMARK = re.compile(r"\s*(\([^)]*\)|/[^/\s]+/|<[^>]*>)")


def _clean_piece(piece: str) -> str:
    first_alternative = piece.split(";")[0]
    return " ".join(_ANNOTATION.sub("", first_alternative).split())


def _is_sentence(text: str) -> bool:
    return len(text.split()) >= 3 and text.endswith(_SENTENCE_END)


def _ding_piece_pairs(line: str) -> list[tuple[str, str]]:
    """The cleaned (German, English) piece pairs of one Ding line; none for comments, lines without ` :: ` and
    lines whose sides have different numbers of pieces."""
    line = line.rstrip("\n")
    if line.startswith("#") or " :: " not in line:
        return []
    german, english = line.split(" :: ", 1)
    german_pieces, english_pieces = german.split(" | "), english.split(" | ")
    if len(german_pieces) != len(english_pieces):
        return []
    return [
        (_clean_piece(german_piece), _clean_piece(english_piece))
        for german_piece, english_piece in zip(german_pieces, english_pieces, strict=True)
    ]


def parse_ding_line(line: str) -> list[tuple[str, str]]:
    """The sentence pairs of one line of the Ding dictionary (`German :: English`, pieces separated by ` | `).

    Pieces correspond one to one between the sides; each contributes its first `;` alternative with `{...}` and
    `[...]` annotations removed, when both sides are sentences (3 words or more, ending in `.`, `?` or `!`).
    Comment lines, lines without ` :: ` and lines whose sides have different numbers of pieces give nothing.
    """
    return [pair for pair in _ding_piece_pairs(line) if _is_sentence(pair[0]) and _is_sentence(pair[1])]


def parse_ding_lexicon_line(line: str) -> list[tuple[str, str]]:
    """The word and phrase pairs of one Ding line: the pieces that `parse_ding_line` does not take as sentences,
    cleaned the same way and of their `(...)` remarks, `/.../` abbreviations and `<...>` cross-references too, when
    neither side is then empty (`Haus {n}; Gebäude {n} (Bauwerk) :: house; building` gives `("Haus", "house")`)."""
    pairs = []
    for german, english in _ding_piece_pairs(line):
        if _is_sentence(german) and _is_sentence(english):
            continue
        german, english = (" ".join(_LEXICON_REMARK.sub("", side).split()) for side in (german, english))
        if german and english:
            pairs.append((german, english))
    return pairs


def read_ding_corpus(path: str | Path = DING_PATH) -> list[tuple[str, str]]:
    """All distinct (German, English) sentence pairs of the Ding file at `path`, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"The default corpus {path} is missing. Install it with `sudo apt-get install -y trans-de-en` "
            "(Debian/Ubuntu; scripts/setup.sh does this), or pass another corpus with `--corpus`: a local "
            ".jsonl/.tsv/.csv file or folder, a Hub dataset id, or a synthetic task (reversal, numbers)."
        )
    pairs = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            for pair in parse_ding_line(line):
                pairs.setdefault(pair, None)
    return list(pairs)


def read_ding_lexicon(path: str | Path = DING_PATH, held_out: set[str] = frozenset()) -> list[tuple[str, str]]:
    """All distinct word and phrase pairs of the Ding file (`parse_ding_lexicon_line`), in file order, leaving out
    every line that holds a sentence of `held_out`: a held-out sentence's own headword translation stays unseen."""
    pairs = {}
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            if any(sentence in held_out for pair in parse_ding_line(line) for sentence in pair):
                continue
            for pair in parse_ding_lexicon_line(line):
                if not held_out.intersection(pair):
                    pairs.setdefault(pair, None)
    return list(pairs)


def split_pairs(
    pairs: list[tuple[str, str]], validation_size: int, test_size: int, seed: int
) -> dict[str, list[tuple[str, str]]]:
    """Seeded shuffle into train / validation / test.

    Train keeps no pair that shares its source or its target sentence with a held-out pair (the dictionary lists
    some sentences under several headwords, with other translations), so the test sentences are unseen.
    """
    if validation_size < 1 or test_size < 1 or validation_size + test_size >= len(pairs):
        raise ValueError(
            f"validation_size={validation_size} and test_size={test_size} must be >= 1 and leave training pairs "
            f"out of {len(pairs)}"
        )
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    test = shuffled[:test_size]
    validation = shuffled[test_size : test_size + validation_size]
    held_out = {sentence for pair in test + validation for sentence in pair}
    train = [pair for pair in shuffled[test_size + validation_size :] if not held_out.intersection(pair)]
    if not train:
        raise ValueError(
            f"validation_size={validation_size} and test_size={test_size} leave no training pairs out of "
            f"{len(pairs)}: every other pair shares its source or target sentence with a held-out pair"
        )
    return {"train": train, "validation": validation, "test": test}


def pairs_to_dataset_dict(splits: dict[str, list[tuple[str, str]]], src_lang: str, tgt_lang: str) -> DatasetDict:
    """`{split: [(source, target), ...]}` as a `DatasetDict` of `{"translation": {src_lang, tgt_lang}}` rows."""
    return DatasetDict(
        {
            name: Dataset.from_dict({"translation": [{src_lang: src, tgt_lang: tgt} for src, tgt in pairs]})
            for name, pairs in splits.items()
        }
    )


def reversal_pairs(count: int, min_length: int = 4, max_length: int = 12, seed: int = 0) -> list[tuple[str, str]]:
    """Random sequences of the letters a..z (as words) and their reversal: target word i aligns to source n-1-i."""
    generator = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    pairs = []
    for _ in range(count):
        words = [generator.choice(letters) for _ in range(generator.randint(min_length, max_length))]
        pairs.append((" ".join(words), " ".join(reversed(words))))
    return pairs


def number_pairs(count: int, max_number: int = 999_999, target_language: str = "de", seed: int = 0):
    """English number words -> the same number in `target_language` words (num2words), e.g. 'twenty-one' ->
    'einundzwanzig': German swaps tens and units inside one word, so the alignment is not monotonic."""
    from num2words import num2words

    generator = random.Random(seed)
    numbers = [generator.randint(0, max_number) for _ in range(count)]
    return [(num2words(number, lang="en"), num2words(number, lang=target_language)) for number in numbers]


def _synthetic_corpus(
    name: str,
    validation_size: int,
    test_size: int,
    seed: int,
    size: int,
    min_length: int | None = None,
    max_length: int | None = None,
) -> dict:
    if name == "reversal":
        low = 4 if min_length is None else min_length
        high = 12 if max_length is None else max_length
        if not 1 <= low <= high:
            raise ValueError(
                f"synthetic_min_length={low} and synthetic_max_length={high}: need 1 <= min_length <= max_length"
            )

        def make(count, seed):
            return reversal_pairs(count, min_length=low, max_length=high, seed=seed)
    else:
        if min_length is not None or max_length is not None:
            raise ValueError(
                f"synthetic_min_length / synthetic_max_length apply to the reversal task only, not to {name!r} "
                "(its lengths follow from the numbers drawn)"
            )
        make = number_pairs
    if min(size, validation_size, test_size) < 1:
        raise ValueError(
            f"synthetic_size={size}, validation_size={validation_size} and test_size={test_size}: every split of "
            f"the {name} task needs at least one pair"
        )
    train = make(size, seed=seed)
    seen = {source for source, _ in train}
    validation = _unseen_pairs(make, validation_size, seed + 1, seen, name)
    seen.update(source for source, _ in validation)
    return {"train": train, "validation": validation, "test": _unseen_pairs(make, test_size, seed + 2, seen, name)}


def _unseen_pairs(make, count: int, seed: int, seen: set[str], name: str) -> list[tuple[str, str]]:
    """The first `count` pairs of the seeded stream `make(n, seed=seed)` whose source is not in `seen`: a held-out
    split of a synthetic task that tests generalisation, not recall (numbers repeat in about 2% of the draws)."""
    drawn = count + count // 10 + 10
    while True:
        unseen = [pair for pair in make(drawn, seed=seed) if pair[0] not in seen]
        if len(unseen) >= count:
            return unseen[:count]
        if drawn > 20 * count + 1000:
            raise ValueError(
                f"the {name} task gives only {len(unseen)} pairs in {drawn} draws whose source is not in the "
                f"{len(seen)} sources of the splits before, short of the {count} to hold out: lower synthetic_size "
                "or the held-out sizes, or widen the sequence lengths"
            )
        drawn *= 2


def _to_translation_column(dataset: Dataset, src_lang: str, tgt_lang: str, origin: str) -> Dataset:
    """Accept `{"translation": {src, tgt}}` rows or flat `{src_lang: ..., tgt_lang: ...}` columns."""
    if "translation" in dataset.column_names:
        return dataset.select_columns(["translation"])
    if src_lang in dataset.column_names and tgt_lang in dataset.column_names:
        return dataset.map(
            lambda row: {"translation": {src_lang: row[src_lang], tgt_lang: row[tgt_lang]}},
            remove_columns=dataset.column_names,
        )
    header = " (the first line of the file names the columns)" if Path(origin).suffix in DELIMITED_FORMATS else ""
    raise ValueError(
        f"{origin}: expected a 'translation' column or the columns {src_lang!r} and {tgt_lang!r}, "
        f"found {dataset.column_names}{header}"
    )


def _delimited_rows(path: Path):
    """`(line number, fields)` of each line of a `.tsv` or `.csv` file that is not blank, the header first.

    TSV fields are the text between tabs, as written: no quoting. CSV fields follow RFC 4180; a row that runs over
    a line break is refused, as an unbalanced quote would otherwise merge the lines after it into one text.
    """
    # newline="\n": lines end where an editor ends them; a stray "\r" inside a text neither ends nor vanishes.
    with path.open(encoding="utf-8-sig", newline="\n") as lines:
        if path.suffix == ".tsv":
            for number, line in enumerate(lines, start=1):
                line = line.removesuffix("\n").removesuffix("\r")
                if line.strip():
                    yield number, line.split("\t")
            return
        reader = csv.reader(lines, strict=True)
        start = 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise ValueError(
                    f"{path}: line {start}: not valid CSV ({error}); a .csv file is read as RFC 4180: a field that "
                    "starts with a quote must end with one, a quote inside it is written twice, and a field holds at "
                    f"most {csv.field_size_limit()} characters"
                ) from None
            if reader.line_num > start:
                raise ValueError(
                    f"{path}: lines {start}-{reader.line_num} make one CSV row: a quoted field holds a line break "
                    "(an unbalanced quote?); each pair must be on one line"
                )
            if fields and (len(fields) > 1 or fields[0].strip()):
                yield start, fields
            start = reader.line_num + 1


def _delimited_examples(path: str):
    """The rows of a checked `.tsv` / `.csv` file after its header, as `{column: text}`."""
    path = Path(path)
    rows = _delimited_rows(path)
    _, header = next(rows)
    tsv = path.suffix == ".tsv"
    for number, fields in rows:
        if fields == header:
            raise ValueError(f"{path}: line {number} repeats the header line; were files joined with their headers?")
        if len(fields) != len(header):
            trailing = " (a trailing separator?)" if len(fields) == len(header) + 1 and not fields[-1] else ""
            raise ValueError(
                f"{path}: line {number} has {len(fields)} {'tab' if tsv else 'comma'}-separated fields{trailing}, the "
                f"header line names {len(header)}: {header}"
                + ("; a .tsv line holds the texts separated by single tabs, with no quoting" if tsv else "")
            )
        yield dict(zip(header, fields, strict=True))


def _file_digest(path: Path) -> str:
    """The SHA-256 of the file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_delimited(path: str | Path) -> Dataset:
    """A `.tsv` or `.csv` corpus file as a `Dataset` with one string column per header field, every text exactly as
    written ("NA", "null" and "" included).

    The first line names the columns (e.g. `de<TAB>en`); each later line that is not blank is one row. `.tsv`
    fields are separated by tabs and never quoted; `.csv` follows RFC 4180 quoting.

    Raises:
        ValueError: naming the file and the line, for a file without a header or rows, a header naming a column
            twice, a line with another number of fields than the header, a repeated header line, invalid CSV, a
            row over several lines, or text that is not UTF-8.
    """
    path = Path(path)
    try:
        rows = _delimited_rows(path)
        header = next(rows, None)
        if header is None:
            example = "de<TAB>en" if path.suffix == ".tsv" else "de,en"
            raise ValueError(
                f"{path}: the file is empty; expected a header line naming the columns (e.g. {example}), then one "
                "pair a line"
            )
        if next(rows, None) is None:
            raise ValueError(f"{path}: no pairs after the header line {header[1]} (line {header[0]})")
        number, names = header
        if not all(name.strip() for name in names) or len(set(names)) != len(names):
            raise ValueError(f"{path}: line {number}: the header line must name each column once, found {names}")
        return Dataset.from_generator(
            _delimited_examples,
            features=datasets.Features({name: datasets.Value("string") for name in names}),
            gen_kwargs={"path": str(path)},
            # The file's content, not its modification time: a file rewritten within the clock's tick is read anew.
            fingerprint=Hasher.hash([path.suffix, _file_digest(path), _delimited_rows, _delimited_examples]),
        )
    except (UnicodeDecodeError, DatasetGenerationError) as error:
        _check_utf8(path)
        # Errors raised while the examples are generated come wrapped in a message without file or line.
        if isinstance(error.__cause__, ValueError):
            raise error.__cause__ from None
        raise


def _line_number(path: Path, row: int) -> int:
    """The line of `path` holding data row `row` (0-based): loaders skip blank lines and a CSV header."""
    if path.suffix in DELIMITED_FORMATS:
        rows = _delimited_rows(path)
        next(rows)
        for index, (number, _) in enumerate(rows):
            if index == row:
                return number
        raise IndexError(f"{path} has no data row {row}")
    rows_to_skip = row
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                if rows_to_skip == 0:
                    return number
                rows_to_skip -= 1
    raise IndexError(f"{path} has no data row {row}")


def _where(path: Path | None, row: int) -> str:
    """`line N` of a file that has lines (all but a `.json` document), else `row N`."""
    return f"line {_line_number(path, row)}" if path is not None and path.suffix != ".json" else f"row {row + 1}"


def _check_texts(dataset: Dataset, src_lang: str, tgt_lang: str, origin: str, path: Path | None = None) -> None:
    """Raise a ValueError naming the first row (its line in `path`, when it comes from a file) without a string
    on either side; None would otherwise reach the tokenizer deep inside `Dataset.map`."""
    feature = dataset.features["translation"]
    if isinstance(feature, datasets.Translation):
        keys = list(feature.languages)
    elif isinstance(feature, dict):
        keys = list(feature)
    else:
        return
    column = dataset.with_format("arrow")["translation"]
    first_missing = {}
    for lang in (src_lang, tgt_lang):
        if lang not in keys:
            raise ValueError(
                f"{origin}: no {lang!r} text in any row; the 'translation' rows have the keys {keys}, expected "
                f"{src_lang!r} and {tgt_lang!r}"
            )
        texts = pc.struct_field(column, lang)
        if texts.null_count:
            first_missing[lang] = pc.index(pc.is_null(texts), True).as_py()
        elif not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
            rows = ((row, pair[lang]) for row, pair in enumerate(dataset["translation"]))
            row, value = next(((row, value) for row, value in rows if not isinstance(value, str)), (None, None))
            if row is None:
                raise ValueError(f"{origin}: the {lang!r} texts are {texts.type}, expected strings")
            raise ValueError(
                f"{origin}: {_where(path, row)}: the {lang!r} text is {value!r}, not a string; write every text as "
                'a JSON string ("42", not 42)'
            )
    if first_missing:
        lang, row = min(first_missing.items(), key=lambda item: item[1])
        raise ValueError(
            f"{origin}: {_where(path, row)}: no {lang!r} text; expected a string for both {src_lang!r} and "
            f'{tgt_lang!r} in every row, as {{"translation": {{...}}}} or as top-level keys'
        )


def _drop_empty_pairs(dataset: Dataset, src_lang: str, tgt_lang: str, origin: str, path: Path | None = None):
    """`dataset` without its pairs whose source or target is empty or whitespace, with a warning that counts them
    and names the first; such a pair teaches nothing but to translate into or out of nothing."""
    column = dataset.with_format("arrow")["translation"]
    blank = [pc.equal(pc.utf8_trim_whitespace(pc.struct_field(column, lang)), "") for lang in (src_lang, tgt_lang)]
    empty = pc.or_(*blank)
    count = pc.sum(empty).as_py() or 0
    if not count:
        return dataset
    if count == len(dataset):
        raise ValueError(f"{origin}: no pairs: all {count} rows have an empty {src_lang!r} or {tgt_lang!r} text")
    logger.warning(
        "%s: %d pairs with an empty %r or %r text dropped (the first at %s)",
        origin, count, src_lang, tgt_lang, _where(path, pc.index(empty, True).as_py()),
    )  # fmt: skip
    return dataset.select(pc.indices_nonzero(pc.invert(empty).combine_chunks()).cast(pa.int64()).to_numpy())


def _check_utf8(path: Path) -> None:
    """Raise a ValueError naming the first line of `path` that is not UTF-8."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}: line {number} is not UTF-8 text (byte 0x{line[error.start]:02x} at column "
                    f"{error.start + 1}: {error.reason}); corpus files must be UTF-8"
                ) from None


def _check_json_lines(path: Path) -> None:
    """Raise a ValueError naming the first line of a JSON-lines file that is not a JSON object."""
    if path.suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8-sig"))
            return  # one JSON document: the loader's own error stands
        except json.JSONDecodeError:
            pass  # JSON lines in a .json file, as the loader accepts them
    with path.open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path}: line {number} is not valid JSON ({error.msg} at column {error.colno}); a "
                    f"{path.suffix} file holds one JSON object a line"
                ) from None
            if not isinstance(value, dict):
                raise ValueError(
                    f"{path}: line {number} is a JSON {type(value).__name__}, expected an object such as "
                    '{"translation": {"de": "...", "en": "..."}} or {"de": "...", "en": "..."}'
                )


def _read_json(data_files: dict[str, str]) -> DatasetDict:
    for file in data_files.values():
        with Path(file).open("rb") as lines:
            if not any(line.strip() for line in lines):
                raise ValueError(f"{file}: the file is empty; expected one JSON object a line")
    try:
        loaded = datasets.load_dataset("json", data_files=data_files)
    except (UnicodeDecodeError, DatasetGenerationError):
        # The loaders' own error names neither the file nor the line.
        for file in data_files.values():
            _check_utf8(Path(file))
            _check_json_lines(Path(file))
        raise
    except ValueError as error:
        # A file that parses to no rows (`[]`) fails as 'Instruction "<split>" corresponds to no data!'.
        empty = re.match(r'Instruction "(\w+)" corresponds to no data', str(error))
        if empty and empty[1] in data_files:
            raise ValueError(f"{data_files[empty[1]]}: no pairs") from None
        raise
    for name, split in loaded.items():
        try:
            # The JSON reader keeps invalid UTF-8 in its string columns; it would fail later, in a `map`.
            split.with_format("arrow")[:].validate(full=True)
        except pa.ArrowInvalid:
            _check_utf8(Path(data_files[name]))
            raise
    return loaded


def _split_dataset(
    dataset: Dataset, src_lang: str, tgt_lang: str, validation_size: int, test_size: int, seed: int, origin: str
):
    """A source with one split of `translation` rows, split like the default corpus, each distinct pair once."""
    rows = [(row[src_lang], row[tgt_lang]) for row in dataset["translation"]]
    pairs = list(dict.fromkeys(rows))
    if len(pairs) < len(rows):
        logger.warning("%s: %d duplicate pairs dropped, each pair is kept once", origin, len(rows) - len(pairs))
    try:
        splits = split_pairs(pairs, validation_size, test_size, seed)
    except ValueError as error:
        raise ValueError(f"{origin}: {len(pairs)} distinct pairs in {len(rows)} rows: {error}") from None
    left_out = len(pairs) - sum(len(split) for split in splits.values())
    if left_out:
        logger.info("%s: %d pairs share a sentence with a held-out pair and stay out of train", origin, left_out)
    return pairs_to_dataset_dict(splits, src_lang, tgt_lang)


def _split_files(path: Path) -> dict[str, str]:
    """The train / validation / test files of a corpus folder."""
    data_files = {}
    for split in SPLITS:
        found = [path / f"{split}{suffix}" for suffix in LOCAL_FORMATS if (path / f"{split}{suffix}").is_file()]
        if not found:
            present = sorted(child.name for child in path.iterdir())
            raise FileNotFoundError(
                f"{path}: no {split}.jsonl/.json/.tsv/.csv file in this folder (it holds {present[:10]})"
            )
        if len(found) > 1:
            raise ValueError(
                f"{path}: the {split} split is in {len(found)} files, {[f.name for f in found]}; keep one"
            )
        data_files[split] = str(found[0])
    return data_files


def _load_local(path: Path, src_lang: str, tgt_lang: str, validation_size: int, test_size: int, seed: int):
    if path.is_dir():
        data_files = _split_files(path)
        suffixes = {Path(file).suffix for file in data_files.values()}
        if len(suffixes) != 1:
            raise ValueError(f"{path}: the split files must share one format, found {sorted(suffixes)}")
        (suffix,) = suffixes
    else:
        suffix = path.suffix
        if suffix not in LOCAL_FORMATS:
            compressed = " (uncompress it first)" if "".join(path.suffixes[-2:-1]) in LOCAL_FORMATS else ""
            raise ValueError(
                f"{path}: unsupported file type {suffix!r}; use one of {sorted(LOCAL_FORMATS)}{compressed}"
            )
        data_files = {"train": str(path)}
    if suffix in DELIMITED_FORMATS:
        loaded = DatasetDict({name: read_delimited(file) for name, file in data_files.items()})
    else:
        loaded = _read_json(data_files)
    checked = {}
    for name, split in loaded.items():
        file = data_files[name]
        if not len(split):
            raise ValueError(f"{file}: no pairs")
        split = _to_translation_column(split, src_lang, tgt_lang, file)
        _check_texts(split, src_lang, tgt_lang, file, Path(file))
        checked[name] = _drop_empty_pairs(split, src_lang, tgt_lang, file, Path(file))
    loaded = DatasetDict(checked)
    if path.is_dir():
        return loaded
    return _split_dataset(loaded["train"], src_lang, tgt_lang, validation_size, test_size, seed, str(path))


def _load_hub(dataset_id: str, src_lang: str, tgt_lang: str, validation_size: int, test_size: int, seed: int):
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on") or datasets.config.HF_HUB_OFFLINE:
        raise ValueError(
            f"--corpus {dataset_id!r} is neither a local file or folder nor a built-in corpus "
            f"(ding, {', '.join(SYNTHETIC_CORPORA)}), and the Hub is off (HF_HUB_OFFLINE=1), so it cannot be "
            "loaded as a Hub dataset id."
        )
    dataset_name, _, config_name = dataset_id.partition(":")
    loaded = datasets.load_dataset(dataset_name, config_name or None)
    loaded = DatasetDict(
        {name: _to_translation_column(split, src_lang, tgt_lang, dataset_id) for name, split in loaded.items()}
    )
    if "train" not in loaded:
        raise ValueError(f"{dataset_id}: no train split, found {list(loaded)}")
    if "validation" not in loaded or "test" not in loaded:
        loaded = DatasetDict({"train": loaded["train"]})
    checked = {}
    for name, split in loaded.items():
        origin = f"{dataset_id} ({name} split)"
        if not len(split):
            raise ValueError(f"{origin}: no pairs")
        _check_texts(split, src_lang, tgt_lang, origin)
        checked[name] = _drop_empty_pairs(split, src_lang, tgt_lang, origin)
    if len(checked) == 1:
        return _split_dataset(checked["train"], src_lang, tgt_lang, validation_size, test_size, seed, dataset_id)
    return DatasetDict({split: checked[split] for split in SPLITS})


def _texts(split: Dataset, lang: str) -> pa.ChunkedArray:
    return pc.struct_field(split.with_format("arrow")["translation"], lang)


def split_overlap(corpus: DatasetDict | dict, src_lang: str, tgt_lang: str) -> dict[str, dict]:
    """How much of each held-out split the train split already holds, per split present (validation, test):

    `size` (its rows), `sources` (its rows whose source sentence is also a training source) and `pairs` (its rows
    whose source and target are also a training pair), with `source_share` and `pair_share` (fractions of `size`).
    """
    if "train" not in corpus:
        return {}
    train_sources, train_targets = _texts(corpus["train"], src_lang), _texts(corpus["train"], tgt_lang)
    overlap = {}
    for name in ("validation", "test"):
        if name not in corpus:
            continue
        sources, targets = _texts(corpus[name], src_lang), _texts(corpus[name], tgt_lang)
        # Membership in the held-out side's (small) set keeps the training texts in their memory-mapped table.
        in_train = pc.is_in(train_sources, value_set=pc.unique(sources))
        shared_sources = pc.unique(train_sources.filter(in_train))
        seen = pc.is_in(sources, value_set=shared_sources)
        training_pairs = set(
            zip(train_sources.filter(in_train).to_pylist(), train_targets.filter(in_train).to_pylist(), strict=True)
        )
        held_out_pairs = zip(sources.filter(seen).to_pylist(), targets.filter(seen).to_pylist(), strict=True)
        size = len(corpus[name])
        counts = {
            "sources": pc.sum(seen).as_py() or 0,
            "pairs": sum(pair in training_pairs for pair in held_out_pairs),
        }
        overlap[name] = {
            "size": size,
            **counts,
            "source_share": counts["sources"] / size if size else 0.0,
            "pair_share": counts["pairs"] / size if size else 0.0,
        }
    return overlap


def check_split_overlap(overlap: dict[str, dict], origin: str, allow: bool = False) -> None:
    """Raise a ValueError when more than `OVERLAP_LIMIT` of a held-out split's sources (`split_overlap`) are also
    training sources, unless `allow`; then log a warning instead."""
    for name, counts in overlap.items():
        if counts["source_share"] <= OVERLAP_LIMIT:
            continue
        message = (
            f"{origin}: {counts['sources']} of the {counts['size']} {name} pairs ({counts['source_share']:.1%}) have "
            f"a source sentence that is also in train ({counts['pairs']} are whole training pairs), above the "
            f"{OVERLAP_LIMIT:.0%} limit: {name} scores would reward memorising"
        )
        if not allow:
            raise ValueError(f"{message}. Remove them from train, or pass --allow_split_overlap true to go on")
        logger.warning("%s; going on, as --allow_split_overlap is set", message)


def _lexicon_sample(path, splits: dict[str, list[tuple[str, str]]], size: int, seed: int) -> list[tuple[str, str]]:
    held_out = {sentence for name in ("validation", "test") for pair in splits[name] for sentence in pair}
    lexicon = read_ding_lexicon(path, held_out)
    if not 0 <= size <= len(lexicon):
        raise ValueError(f"ding_lexicon_size={size}: the Ding file at {path} has 0 to {len(lexicon)} lexicon pairs")
    return random.Random(seed).sample(lexicon, size)


def load_translation_corpus(
    corpus: str = "ding",
    src_lang: str = "de",
    tgt_lang: str = "en",
    validation_size: int = 500,
    test_size: int = 1000,
    seed: int = 0,
    synthetic_size: int = 20000,
    synthetic_min_length: int | None = None,
    synthetic_max_length: int | None = None,
    ding_lexicon_size: int = 0,
) -> DatasetDict:
    """A train / validation / test `DatasetDict` of `{"translation": {src_lang: ..., tgt_lang: ...}}` rows.

    Args:
        corpus: "ding" (Debian's trans-de-en, German->English), "reversal", "numbers", a local file or folder, or a
            Hub dataset id (`name` or `name:config`).
        validation_size, test_size: held-out sizes when the source has no splits of its own.
        seed: the split seed (and the generation seed of the synthetic tasks).
        synthetic_size: number of training pairs of a synthetic task.
        synthetic_min_length, synthetic_max_length: the range of sequence lengths (in words) of the reversal task;
            None keeps `reversal_pairs`' defaults (4 and 12).
        ding_lexicon_size: with the Ding corpus, this many of its word and phrase pairs (`read_ding_lexicon`, a
            sample seeded by `seed`) join the training split after the sentence pairs; 0 adds none.

    Pairs with an empty (or whitespace) side are dropped, and a file split here keeps each distinct pair once;
    both are logged with their counts. The held-out pairs of a split made here share no sentence with train.

    Raises:
        ValueError: a local file that is not UTF-8, is empty, holds a malformed line (`read_delimited`, or a
            JSON line that is not an object), or a row without a string for `src_lang` or `tgt_lang` (a missing key,
            a null or a number); a split left without pairs; the message names the file and the line (the row, for
            a Hub dataset), or the counts.
    """
    if corpus == "ding" or Path(corpus) == DING_PATH:
        if (src_lang, tgt_lang) not in (("de", "en"), ("en", "de")):
            raise ValueError(f"the Ding corpus is German-English; got src_lang={src_lang!r}, tgt_lang={tgt_lang!r}")
        path = DING_PATH if corpus == "ding" else corpus
        splits = split_pairs(read_ding_corpus(path), validation_size, test_size, seed)
        if ding_lexicon_size:
            splits["train"] = splits["train"] + _lexicon_sample(path, splits, ding_lexicon_size, seed)
        if src_lang == "en":
            splits = {name: [(english, german) for german, english in pairs] for name, pairs in splits.items()}
        return pairs_to_dataset_dict(splits, src_lang, tgt_lang)
    if ding_lexicon_size:
        raise ValueError(f"ding_lexicon_size={ding_lexicon_size} needs the Ding corpus, not --corpus {corpus!r}")
    if corpus in SYNTHETIC_CORPORA:
        splits = _synthetic_corpus(
            corpus, validation_size, test_size, seed, synthetic_size, synthetic_min_length, synthetic_max_length
        )
        return pairs_to_dataset_dict(splits, src_lang, tgt_lang)
    path = Path(corpus)
    if path.exists():
        return _load_local(path, src_lang, tgt_lang, validation_size, test_size, seed)
    if path.suffix in LOCAL_FORMATS or corpus.startswith((".", "/", "~")):
        raise FileNotFoundError(f"--corpus {corpus}: no such file or folder")
    return _load_hub(corpus, src_lang, tgt_lang, validation_size, test_size, seed)
