"""What both training loops start from: the corpus, its tokenized splits, the tokenizer and the model, with the
generation settings the saved checkpoints keep."""

import logging

from transformers import GenerationConfig

from .arguments import DataArguments, ModelArguments
from .checkpoint_loading import check_model_type, load_checkpoint
from .configuration_seq2seq_attention import Seq2SeqAttentionConfig
from .data import check_split_overlap, load_translation_corpus, split_overlap
from .modeling_seq2seq_attention import Seq2SeqAttentionForConditionalGeneration
from .tokenization import corpus_texts, load_tokenizer, tokenize_translations, train_tokenizer
from .weights_manifest import check_architecture, check_weights, read_manifest

logger = logging.getLogger(__name__)


def build_model(model_args: ModelArguments, tokenizer) -> Seq2SeqAttentionForConditionalGeneration:
    """A new model of `model_args`' architecture, sized to `tokenizer` and using its special token ids."""
    config = Seq2SeqAttentionConfig(
        vocab_size=len(tokenizer),
        hidden_size=model_args.hidden_size,
        num_hidden_layers=model_args.num_hidden_layers,
        num_attention_heads=model_args.num_attention_heads,
        attention_type=model_args.attention_type,
        rnn_type=model_args.rnn_type,
        encoder_layer_types=model_args.encoder_layer_types,
        decoder_layer_types=model_args.decoder_layer_types,
        self_attention_type=model_args.self_attention_type,
        intermediate_size=model_args.intermediate_size,
        dropout=model_args.dropout,
        attention_dropout=model_args.attention_dropout,
        word_dropout=model_args.word_dropout,
        initializer_range=model_args.initializer_range,
        compile_additive_attention=model_args.compile_additive_attention,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
    )
    return Seq2SeqAttentionForConditionalGeneration(config)


def _load_tokenizer_and_model(model_args: ModelArguments, training_args, train_split, data_args):
    """The tokenizer and model of a resume, of `--init_from`, or new ones (a tokenizer trained on `train_split`)."""
    if training_args.resume_from_checkpoint:
        # The checkpoint's own tokenizer: a retrained one might differ from the ids the weights were trained on.
        # Its config too, whatever the model arguments say; the Trainer then loads the weights (not through
        # from_pretrained, so the manifest's architecture and checksums are checked here).
        checkpoint = training_args.resume_from_checkpoint
        check_model_type(checkpoint)
        config = Seq2SeqAttentionConfig.from_pretrained(checkpoint)
        manifest, manifest_path = read_manifest(checkpoint)
        if manifest is not None:
            check_architecture(manifest, manifest_path, config.architecture(), f"{checkpoint}/config.json")
            check_weights(checkpoint, manifest, manifest_path)
        return load_tokenizer(checkpoint), Seq2SeqAttentionForConditionalGeneration(config)
    if model_args.init_from:
        # Only an explicit choice overrides the checkpoint's own.
        kernel_choice = model_args.compile_additive_attention
        overrides = {} if kernel_choice is None else {"compile_additive_attention": kernel_choice}
        checkpoint = load_checkpoint(model_args.init_from, **overrides)
        return checkpoint.tokenizer, checkpoint.model
    tokenizer = train_tokenizer(
        corpus_texts(train_split, data_args.src_lang, data_args.tgt_lang),
        vocab_size=model_args.vocab_size,
        model_max_length=data_args.max_source_length,
    )
    return tokenizer, build_model(model_args, tokenizer)


def load_corpus(data_args: DataArguments):
    """The text splits (`DatasetDict` of `{"translation": {src, tgt}}` rows) that `data_args` names, refused when a
    held-out split shares its sources with train (`check_split_overlap`) unless `allow_split_overlap`."""
    corpus = load_translation_corpus(
        data_args.corpus,
        data_args.src_lang,
        data_args.tgt_lang,
        validation_size=data_args.validation_size,
        test_size=data_args.test_size,
        seed=data_args.split_seed,
        synthetic_size=data_args.synthetic_size,
        synthetic_min_length=data_args.synthetic_min_length,
        synthetic_max_length=data_args.synthetic_max_length,
        ding_lexicon_size=data_args.ding_lexicon_size,
    )
    overlap = split_overlap(corpus, data_args.src_lang, data_args.tgt_lang)
    check_split_overlap(overlap, data_args.corpus, allow=data_args.allow_split_overlap)
    return corpus


def set_generation_defaults(generation_config: GenerationConfig, training_args, data_args: DataArguments) -> None:
    """What the saved checkpoints generate with by default: `generation_num_beams` beams (else the config's, else
    greedy) with `length_penalty` (else the config's), and at most `max_target_length` new tokens, the longest target
    trained on (`generation_max_length`, a length with the decoder start token, when given).

    The limit is `max_new_tokens`, with `max_length` unset: a `generate(max_new_tokens=...)` call then overrides it
    without a warning that both are set.
    """
    generation_config.num_beams = training_args.generation_num_beams or generation_config.num_beams or 1
    if data_args.length_penalty is not None:  # else a fine-tuned checkpoint keeps its own, as with num_beams
        generation_config.length_penalty = data_args.length_penalty
    if training_args.generation_max_length is not None:
        generation_config.max_new_tokens = training_args.generation_max_length - 1
    else:
        generation_config.max_new_tokens = data_args.max_target_length
    generation_config.max_length = None


def load_data_and_model(model_args: ModelArguments, data_args: DataArguments, training_args) -> tuple:
    """The corpus (text splits), its tokenized form, the tokenizer and the model, as both training scripts use them.

    Returns `(corpus, tokenized, tokenizer, model)`: `corpus` holds `{"translation": {src, tgt}}` rows per split,
    `tokenized` the `input_ids` / `attention_mask` / `labels` of each split within the length limits.
    """
    if training_args.generation_max_length is not None and training_args.generation_max_length < 2:
        raise ValueError(
            f"--generation_max_length {training_args.generation_max_length}: the length counts the decoder start "
            "token, so it must be at least 2"
        )
    corpus = load_corpus(data_args)
    if data_args.max_train_samples is not None:
        corpus["train"] = corpus["train"].select(range(min(data_args.max_train_samples, len(corpus["train"]))))
    if data_args.max_eval_samples is not None:
        corpus["validation"] = corpus["validation"].select(
            range(min(data_args.max_eval_samples, len(corpus["validation"])))
        )
    logger.info("corpus %s: %s", data_args.corpus, {name: len(split) for name, split in corpus.items()})

    tokenizer, model = _load_tokenizer_and_model(model_args, training_args, corpus["train"], data_args)
    set_generation_defaults(model.generation_config, training_args, data_args)
    tokenized = tokenize_translations(
        corpus,
        tokenizer,
        data_args.src_lang,
        data_args.tgt_lang,
        data_args.max_source_length,
        data_args.max_target_length,
        bpe_dropout=data_args.bpe_dropout,
        bpe_dropout_copies=data_args.bpe_dropout_copies,
    )
    return corpus, tokenized, tokenizer, model


__all__ = ["build_model", "load_corpus", "load_data_and_model", "set_generation_defaults"]
