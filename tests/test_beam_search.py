"""Beam search that drops finished sentences: the same sequences as `generate`'s own search, on fewer rows."""

import contextlib

import pytest
import torch

from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration
from hf_attention.beam_search import beam_search_dropping_finished, can_drop_finished
from hf_attention.tokenization import train_tokenizer
from hf_attention.training_trainer import TranslationTrainer
from hf_attention.translation import translate

VOCAB, EOS = 40, 2
SETTINGS = [
    {"num_beams": 4},
    {"num_beams": 3, "length_penalty": 0.5, "num_return_sequences": 2},
    {"num_beams": 4, "early_stopping": True},
    {"num_beams": 4, "early_stopping": "never", "length_penalty": 2.0},
    {"num_beams": 4, "use_cache": False},
    {"num_beams": 4, "min_new_tokens": 3, "no_repeat_ngram_size": 2, "repetition_penalty": 1.3},
]


def make_model(attention_type: str, rnn_type: str, eos_scale: float) -> Seq2SeqAttentionForConditionalGeneration:
    """A tiny random model whose end token is made likelier (its tied embedding scaled), so that sentences end at
    different steps."""
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                    attention_type=attention_type, rnn_type=rnn_type)  # fmt: skip
    model = Seq2SeqAttentionForConditionalGeneration(config).eval()
    with torch.no_grad():
        model.get_input_embeddings().weight[EOS] *= eos_scale
    return model


def source_batch() -> dict:
    input_ids = torch.randint(3, VOCAB, (6, 9), generator=torch.Generator().manual_seed(1))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 4:] = 0
    input_ids[2, 4:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@contextlib.contextmanager
def recorded_decoder_rows(model):
    """Yield a list that receives the number of decoder rows of each forward call of `model` inside the block."""
    rows = []
    hook = model.register_forward_pre_hook(
        lambda module, args, kwargs: rows.append(kwargs["decoder_input_ids"].shape[0]), with_kwargs=True
    )
    try:
        yield rows
    finally:
        hook.remove()


def decoder_rows_per_step(model, **generate_kwargs) -> tuple[torch.Tensor, list[int]]:
    """The generated sequences, and the number of decoder rows of each forward call."""
    with recorded_decoder_rows(model) as rows:
        sequences = model.generate(**source_batch(), max_new_tokens=15, **generate_kwargs)
    return sequences, rows


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda settings: "-".join(map(str, settings.items())))
@pytest.mark.parametrize(
    "attention_type, rnn_type, eos_scale",
    [("bahdanau", "lstm", 2.0), ("scaled_dot", "gru", 3.0), ("none", "gru", 2.0), ("bahdanau", "gru", 3.0)],
)
def test_same_sequences_as_generate(attention_type, rnn_type, eos_scale, settings):
    model = make_model(attention_type, rnn_type, eos_scale)
    expected = model.generate(**source_batch(), max_new_tokens=15, **settings)
    sequences, _ = decoder_rows_per_step(model, custom_generate=beam_search_dropping_finished, **settings)
    assert sequences.dtype == expected.dtype
    assert torch.equal(sequences, expected)


SHRINKING = [("bahdanau", "lstm", 2.0), ("scaled_dot", "gru", 3.0)]  # sentences here end at different steps


@pytest.mark.parametrize("attention_type, rnn_type, eos_scale", SHRINKING)
def test_finished_sentences_leave_the_batch(attention_type, rnn_type, eos_scale):
    model = make_model(attention_type, rnn_type, eos_scale)
    expected, library_rows = decoder_rows_per_step(model, num_beams=4)
    sequences, rows = decoder_rows_per_step(model, num_beams=4, custom_generate=beam_search_dropping_finished)
    assert torch.equal(sequences, expected)
    # Sentences end at different steps here, so the rows shrink where generate keeps all 6 x 4.
    assert set(library_rows) == {24}
    assert rows[0] == 24 and rows[-1] < 24 and rows == sorted(rows, reverse=True)
    assert len(rows) == len(library_rows)


@pytest.mark.parametrize(
    "settings",
    [
        {"num_beams": 1},
        {"num_beams": 2, "do_sample": True},
        {"num_beams": 3, "output_scores": True, "return_dict_in_generate": True},
    ],
    ids=["greedy", "beam-sample", "scores"],
)
def test_other_settings_run_the_method_generate_chooses(settings):
    model = make_model("bahdanau", "lstm", 2.0)
    torch.manual_seed(5)
    expected = model.generate(**source_batch(), max_new_tokens=8, **settings)
    torch.manual_seed(5)
    output = model.generate(
        **source_batch(), max_new_tokens=8, custom_generate=beam_search_dropping_finished, **settings
    )
    if isinstance(expected, torch.Tensor):
        assert torch.equal(output, expected)
    else:
        assert torch.equal(output.sequences, expected.sequences)
        assert torch.equal(output.sequences_scores, expected.sequences_scores)


def test_only_plain_beam_search_drops_rows():
    model = make_model("bahdanau", "lstm", 2.0)
    config = model.generation_config
    assert can_drop_finished(config.__class__(num_beams=4), [], [])
    assert not can_drop_finished(config.__class__(num_beams=1), [], [])
    assert not can_drop_finished(config.__class__(num_beams=4, do_sample=True), [], [])
    assert not can_drop_finished(config.__class__(num_beams=4, return_dict_in_generate=True), [], [])
    assert not can_drop_finished(config.__class__(num_beams=4), [object()], [])


def test_translate_decodes_on_fewer_rows_with_the_same_translations():
    texts = ["Ich gehe nach Hause.", "Wie geht es dir?", "Das ist gut.", "Er geht heim!", "Ja.", "Nein, danke."]
    tokenizer = train_tokenizer(texts * 10, vocab_size=VOCAB, model_max_length=32)
    model = make_model("bahdanau", "lstm", 2.0)
    inputs = tokenizer(texts, return_tensors="pt", padding=True)  # translate sorts; one batch keeps the order
    expected = tokenizer.batch_decode(
        model.generate(**inputs, num_beams=4, max_new_tokens=15), skip_special_tokens=True
    )
    with recorded_decoder_rows(model) as rows:
        translations = translate(model, tokenizer, texts, batch_size=6, num_beams=4, max_new_tokens=15)
    assert translations == expected
    assert rows[0] == 24 and rows[-1] < 24


def test_the_trainer_evaluates_with_it():
    trainer = TranslationTrainer.__new__(TranslationTrainer)  # only the model is needed for the settings
    trainer.model = make_model("bahdanau", "lstm", 2.0)
    assert trainer._generation_kwargs({})["custom_generate"] is beam_search_dropping_finished
    assert trainer._generation_kwargs({"custom_generate": None})["custom_generate"] is None
