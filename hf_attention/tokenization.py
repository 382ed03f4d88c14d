"""A joint source+target BPE tokenizer, trained with the `tokenizers` library and wrapped as a transformers fast
tokenizer whose special-token ids match `Seq2SeqAttentionConfig`'s defaults (pad 0, bos 1, eos 2, unk 3).

Words are marked with a leading "▁" (Metaspace), so decoding restores the spacing of the input exactly. Every
encoded sequence ends in `</s>`; the decoder's start token `<s>` is prepended by the model when it shifts the labels.

`tokenize_translations` turns a corpus into model inputs with batched `Dataset.map`; its cache fingerprint includes
the tokenizer's full state, the direction, the length limits and the split, so no run reuses token ids that another
setting produced.
"""

import copy
from collections.abc import Iterable
from pathlib import Path

from datasets import DatasetDict, concatenate_datasets
from datasets.fingerprint import Hasher
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.utils import cached_file

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN]  # ids 0, 1, 2, 3


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, model_max_length: int = 256, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train BPE on `texts` (both languages for a shared vocabulary) and wrap it for transformers.

    Args:
        texts: sentences of both languages.
        vocab_size: the largest vocabulary, special tokens included (smaller when the texts have fewer merges).
        model_max_length: the longest input the model is meant for, saved with the tokenizer.
        min_frequency: merges seen fewer times are not learned.
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size} leaves no room beside the {len(SPECIAL_TOKENS)} special tokens")
    backend = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    # NFKC folds typographic variants (e.g. full-width forms) that would otherwise waste vocabulary entries.
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    backend.train_from_iterator(texts, trainer=trainer)
    eos_id = backend.token_to_id(EOS_TOKEN)
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS_TOKEN}", pair=f"$A {EOS_TOKEN} $B {EOS_TOKEN}", special_tokens=[(EOS_TOKEN, eos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=model_max_length,
    )


def corpus_texts(corpus, src_lang: str, tgt_lang: str) -> Iterable[str]:
    """Both sides of every pair of a `datasets.Dataset` of translations, for training a joint tokenizer."""
    for batch in corpus.iter(batch_size=1000):
        for pair in batch["translation"]:
            yield pair[src_lang]
            yield pair[tgt_lang]


def load_tokenizer(path_or_id: str | Path, **kwargs):
    """`AutoTokenizer.from_pretrained(path_or_id, **kwargs)`, with a clear error for an unreadable `tokenizer.json`.

    A truncated or garbled file otherwise surfaces as a bare `JSONDecodeError` or `KeyError` from deep inside
    transformers, naming no file. Here the tokenizers library re-reads the file to find what is wrong with it.

    Raises:
        ValueError: naming the `tokenizer.json` file and the tokenizers library's parse error.
    """
    try:
        return AutoTokenizer.from_pretrained(path_or_id, **kwargs)
    except Exception as error:
        try:
            # Only a file that is already here (a folder, or the Hub cache) is re-read: nothing is downloaded.
            file = cached_file(
                path_or_id,
                "tokenizer.json",
                subfolder=kwargs.get("subfolder", ""),
                revision=kwargs.get("revision"),
                local_files_only=True,
                _raise_exceptions_for_missing_entries=False,
            )
        except OSError:
            file = None
        if file is None:
            raise
        try:
            Tokenizer.from_file(file)
        except Exception as parse_error:
            raise ValueError(
                f"{file}: not a readable tokenizer file ({parse_error}); it may be truncated or overwritten: save the "
                "tokenizer again with save_pretrained, or copy the checkpoint's tokenizer.json again"
            ) from error
        raise


def tokenize_translations(
    corpus: DatasetDict,
    tokenizer,
    src_lang: str,
    tgt_lang: str,
    max_source_length: int,
    max_target_length: int,
    num_proc: int | None = None,
    bpe_dropout: float = 0.0,
    bpe_dropout_copies: int = 1,
) -> DatasetDict:
    """`input_ids`, `attention_mask` and `labels` for every split (batched `map`), keeping the text columns' order.

    Training pairs longer than the limits are dropped (truncating them would teach the model to stop mid-sentence);
    validation and test sources are truncated instead, so that every held-out sentence is scored, and their labels
    are kept whole (they are the references).

    With `bpe_dropout` > 0 (BPE-dropout, Provilkov et al. 2020), the training split holds `bpe_dropout_copies`
    segmentations of every source, each merge skipped with that probability, so that the model sees the same words
    cut into different subwords; targets and the other splits keep the deterministic segmentation the model is
    evaluated with.
    """
    if not 0.0 <= bpe_dropout < 1.0:
        raise ValueError(f"bpe_dropout={bpe_dropout} must be in [0, 1).")
    if bpe_dropout_copies < 1:
        raise ValueError(f"bpe_dropout_copies={bpe_dropout_copies} must be at least 1.")
    dropout_tokenizer = None
    if bpe_dropout > 0:
        dropout_tokenizer = copy.deepcopy(tokenizer)
        dropout_tokenizer.backend_tokenizer.model.dropout = bpe_dropout
    # Everything the ids depend on: a cached split built under other settings (e.g. the other direction) is not reused.
    settings = {
        "tokenizer_class": type(tokenizer).__qualname__,
        "tokenizer": tokenizer.backend_tokenizer.to_str(),
        "special_tokens": tokenizer.special_tokens_map,
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
        "max_source_length": max_source_length,
        "max_target_length": max_target_length,
    }

    def encode(batch, truncate: bool, copy_index: int | None):
        sources = [pair[src_lang] for pair in batch["translation"]]
        targets = [pair[tgt_lang] for pair in batch["translation"]]
        source_tokenizer = tokenizer if copy_index is None else dropout_tokenizer
        inputs = source_tokenizer(sources, max_length=max_source_length if truncate else None, truncation=truncate)
        inputs["labels"] = tokenizer(text_target=targets)["input_ids"]
        return inputs

    encoded = {}
    for name, split in corpus.items():
        truncate = name != "train"
        copies = [None] if truncate or dropout_tokenizer is None else list(range(bpe_dropout_copies))
        dropout_settings = (bpe_dropout, bpe_dropout_copies) if copies != [None] else None
        fingerprint = Hasher.hash((split._fingerprint, settings, name, truncate, dropout_settings))
        split = concatenate_datasets(
            [
                split.map(
                    encode,
                    batched=True,
                    fn_kwargs={"truncate": truncate, "copy_index": copy_index},
                    num_proc=num_proc,
                    new_fingerprint=Hasher.hash((fingerprint, copy_index)),
                    desc=f"Tokenizing {name}" + ("" if copy_index is None else f" (BPE-dropout copy {copy_index})"),
                )
                for copy_index in copies
            ]
        )
        if not truncate:
            split = split.filter(
                lambda batch: [
                    len(source) <= max_source_length and len(target) <= max_target_length
                    for source, target in zip(batch["input_ids"], batch["labels"], strict=True)
                ],
                batched=True,
                new_fingerprint=Hasher.hash((fingerprint, "filter")),
                desc=f"Dropping {name} pairs over {max_source_length}/{max_target_length} tokens",
            )
        encoded[name] = split
    return DatasetDict(encoded)
