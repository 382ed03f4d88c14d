"""hf_attention.comparison: reused checkpoints are checked, bad arguments fail before any training."""

import json
from pathlib import Path

import pytest

from hf_attention.arguments import DataArguments
from hf_attention.comparison import (
    ComparisonArguments,
    check_trained_split,
    compare_attention_types,
    compared_models,
    parse_checkpoints,
)


def _saved_config(folder: Path, attention_type: str, encoder_layer_types=None, decoder_layer_types=None) -> Path:
    folder.mkdir()
    config = {"attention_type": attention_type}
    if encoder_layer_types is not None:
        config["encoder_layer_types"] = encoder_layer_types
    if decoder_layer_types is not None:
        config["decoder_layer_types"] = decoder_layer_types
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_checkpoints_are_checked(tmp_path):
    none_dir = _saved_config(tmp_path / "n", "none")
    dot_dir = _saved_config(tmp_path / "d", "scaled_dot")
    types = compared_models(ComparisonArguments())
    assert parse_checkpoints([f"none={none_dir}", f"scaled_dot={dot_dir}"], types) == {
        "none": none_dir,
        "scaled_dot": dot_dir,
    }
    with pytest.raises(ValueError, match="'outputs/x': expected NAME=DIR"):
        parse_checkpoints(["outputs/x"], types)
    with pytest.raises(ValueError, match=r"'general' is not among the compared models \(none, bahdanau"):
        parse_checkpoints([f"general={dot_dir}"], types)
    with pytest.raises(ValueError, match="'none' is given twice"):
        parse_checkpoints([f"none={none_dir}", f"none={none_dir}"], types)
    with pytest.raises(FileNotFoundError, match="missing: no such folder"):
        parse_checkpoints([f"bahdanau={tmp_path / 'missing'}"], types)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json in it"):
        parse_checkpoints([f"bahdanau={tmp_path / 'empty'}"], types)
    with pytest.raises(ValueError, match="holds a model with attention_type 'scaled_dot'"):
        parse_checkpoints([f"bahdanau={dot_dir}"], types)


def test_encoder_types_multiply_the_compared_models_and_their_checkpoints_are_checked(tmp_path):
    arguments = ComparisonArguments(
        attention_types=["bahdanau", "scaled_dot"], encoder_types=["rnn", "self_attention", "transformer"]
    )
    models = compared_models(arguments)
    assert models == {
        "bahdanau": ("bahdanau", "rnn"),
        "scaled_dot": ("scaled_dot", "rnn"),
        "bahdanau-self_attention": ("bahdanau", "self_attention"),
        "scaled_dot-self_attention": ("scaled_dot", "self_attention"),
        "bahdanau-transformer": ("bahdanau", "transformer"),
        "scaled_dot-transformer": ("scaled_dot", "transformer"),
    }
    rnn_dir = _saved_config(tmp_path / "rnn", "bahdanau", ["rnn"])
    old_dir = _saved_config(tmp_path / "old", "scaled_dot")  # saved before layer types: an RNN encoder
    self_attention_dir = _saved_config(tmp_path / "sa", "bahdanau", ["self_attention", "self_attention"])
    mixed_dir = _saved_config(tmp_path / "mixed", "bahdanau", ["self_attention", "rnn"])
    transformer_dir = _saved_config(tmp_path / "t", "scaled_dot", ["self_attention"], ["self_attention"])
    items = [
        f"bahdanau={rnn_dir}",
        f"scaled_dot={old_dir}",
        f"bahdanau-self_attention={self_attention_dir}",
        f"scaled_dot-transformer={transformer_dir}",
    ]
    assert parse_checkpoints(items, models) == {
        "bahdanau": rnn_dir,
        "scaled_dot": old_dir,
        "bahdanau-self_attention": self_attention_dir,
        "scaled_dot-transformer": transformer_dir,
    }
    with pytest.raises(ValueError, match=r"encoder_layer_types \['rnn'\] and decoder_layer_types None, not a self_"):
        parse_checkpoints([f"bahdanau-self_attention={rnn_dir}"], models)
    with pytest.raises(ValueError, match=r"encoder_layer_types \['self_attention', 'rnn'\] .*, not a rnn model"):
        parse_checkpoints([f"bahdanau={mixed_dir}"], models)
    with pytest.raises(ValueError, match=r"decoder_layer_types \['self_attention'\], not a self_attention model"):
        parse_checkpoints([f"scaled_dot-self_attention={transformer_dir}"], models)


def test_comparison_refuses_bad_arguments_before_training(tmp_path):
    from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments

    data = DataArguments(corpus="reversal", src_lang="src", tgt_lang="tgt", synthetic_size=10, test_size=100)
    training = TranslationTrainingArguments(output_dir=str(tmp_path), report_to="none")

    def compare(**arguments):
        compare_attention_types(ComparisonArguments(**arguments), ModelArguments(), data, training)

    with pytest.raises(ValueError, match=r"--attention_types \['luong'\]: choose from bahdanau, scaled_dot"):
        compare(attention_types=["none", "luong"])
    with pytest.raises(ValueError, match=r"--encoder_types \['cnn'\]: choose each of rnn, self_attention, trans"):
        compare(encoder_types=["cnn"])
    with pytest.raises(ValueError, match="with attention type none: name the self-attention layers' alignment"):
        compare(encoder_types=["rnn", "self_attention"])
    with pytest.raises(ValueError, match="--encoder_types transformer with attention type none: a decoder"):
        compare(encoder_types=["transformer"])
    with pytest.raises(ValueError, match="--plot_metric 'rouge'"):
        compare(plot_metric="rouge")
    # Reversal lengths 4-12 leave the bucket 1-3 empty: refused at once, not after hours of training.
    with pytest.raises(
        ValueError, match=r"length buckets 1-3 hold fewer than 20 items \(counts 1-3: 0, 4-7: 36, 8\+: 64\)"
    ):
        compare(bucket_edges=[1, 4, 8])
    assert not list(tmp_path.iterdir())


def test_a_reused_checkpoint_trained_on_another_split_is_refused(tmp_path):
    folder = _saved_config(tmp_path / "b", "bahdanau")
    data_args = DataArguments(corpus="reversal", validation_size=16, test_size=12)
    with pytest.raises(ValueError, match="no training_run.json with data_arguments"):
        check_trained_split(folder, data_args)
    record = {"data_arguments": {"corpus": "reversal", "validation_size": 16, "test_size": 12, "split_seed": 0}}
    (folder / "training_run.json").write_text(json.dumps(record))
    check_trained_split(folder, data_args)  # the same split: accepted
    record["data_arguments"]["split_seed"] = 1
    (folder / "training_run.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="trained with split_seed=1, this comparison splits with split_seed=0"):
        check_trained_split(folder, data_args)
