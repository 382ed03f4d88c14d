from dataclasses import dataclass

import pytest
from transformers import Seq2SeqTrainingArguments

from hf_attention.cli import parse_arguments


@dataclass
class Options:
    attention_type: str = "bahdanau"
    hidden_size: int = 128


def test_yaml_supplies_defaults_and_the_command_line_overrides(tmp_path):
    preset = tmp_path / "preset.yaml"
    preset.write_text("attention_type: scaled_dot\nhidden_size: 64\nlearning_rate: 0.01\nreport_to: [none]\n")
    options, training = parse_arguments(
        (Options, Seq2SeqTrainingArguments),
        ["--output_dir", str(tmp_path), "--config", str(preset), "--hidden_size", "32"],
    )
    assert options.attention_type == "scaled_dot" and options.hidden_size == 32
    assert training.learning_rate == 0.01 and training.report_to == []


def test_missing_or_malformed_config_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--config .*nope.yaml: no such file"):
        parse_arguments((Options,), ["--config", str(tmp_path / "nope.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="expected a mapping of argument names to values, got list"):
        parse_arguments((Options,), ["--config", str(bad)])
