import pytest
from transformers import AutoConfig

import hf_attention
from hf_attention import ATTENTION_TYPES, Seq2SeqAttentionConfig


def test_defaults_and_required_arguments():
    config = Seq2SeqAttentionConfig()
    assert config.model_type == "seq2seq_attention"
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (
        8000,
        256,
        2,
        4,
    )
    assert config.attention_type == "bahdanau" and config.rnn_type == "lstm"
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id, config.decoder_start_token_id) == (
        0,
        1,
        2,
        1,
    )
    assert config.is_encoder_decoder and config.tie_word_embeddings and config.use_cache
    assert config.head_dim == 64


def test_round_trip_through_auto_config(tmp_path):
    config = Seq2SeqAttentionConfig(vocab_size=123, hidden_size=32, num_attention_heads=2, attention_type="general")
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, hf_attention.Seq2SeqAttentionConfig)
    expected = {key: value for key, value in config.to_dict().items() if key != "_name_or_path"}
    assert {key: value for key, value in loaded.to_dict().items() if key != "_name_or_path"} == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"attention_type": "luong"},
            r"attention_type='luong' is not one of bahdanau, scaled_dot, dot, general, none",
        ),
        ({"rnn_type": "rnn"}, r"rnn_type='rnn' is not one of gru, lstm"),
        ({"hidden_size": 30, "num_attention_heads": 4}, r"hidden_size=30 is not divisible by num_attention_heads=4"),
        ({"hidden_size": 15, "num_attention_heads": 3}, r"hidden_size=15 must be even"),
        ({"num_hidden_layers": 0}, r"num_hidden_layers=0 must be a positive integer"),
        ({"dropout": 1.5}, r"dropout=1.5 must be in \[0, 1\)"),
        ({"word_dropout": 1.0}, r"word_dropout=1.0 must be in \[0, 1\)"),
        (
            {"num_hidden_layers": 2, "encoder_layer_types": ["rnn"]},
            r"encoder_layer_types=\['rnn'\] has 1 entries; it needs one per layer, num_hidden_layers=2",
        ),
        (
            {"num_hidden_layers": 1, "decoder_layer_types": ["lstm"]},
            r"decoder_layer_types holds 'lstm', which is not one of rnn, self_attention",
        ),
        (
            {"num_hidden_layers": 1, "encoder_layer_types": ["self_attention"], "self_attention_type": "none"},
            r"self_attention_type='none' is not one of bahdanau, scaled_dot, dot, general",
        ),
        (
            {"num_hidden_layers": 1, "attention_type": "none", "decoder_layer_types": ["self_attention"]},
            r"decoder_layer_types=\['self_attention'\] with attention_type='none': a decoder self-attention layer",
        ),
    ],
)
def test_bad_values_raise_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Seq2SeqAttentionConfig(**kwargs)


def test_model_rechecks_a_config_changed_after_creation():
    config = Seq2SeqAttentionConfig(vocab_size=20, hidden_size=16, num_attention_heads=2)
    config.attention_type = "cosine"
    with pytest.raises(ValueError, match="attention_type='cosine'"):
        hf_attention.Seq2SeqAttentionModel(config)


def test_every_attention_type_is_listed():
    assert ATTENTION_TYPES == ("bahdanau", "scaled_dot", "dot", "general", "none")
