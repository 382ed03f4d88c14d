import logging
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pytest
import transformers
import yaml
from transformers import Seq2SeqTrainingArguments

from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.cli import parse_arguments, setup_logging
from hf_attention.comparison import ComparisonArguments

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


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


@dataclass
class Sizes:
    attention_type: str = "bahdanau"
    hidden_size: int = 128
    layer_sizes: list[int] = field(default_factory=lambda: [8])
    dropout: float = 0.0


def test_later_presets_win_and_the_command_line_wins_over_all(tmp_path):
    base, override = tmp_path / "base.yaml", tmp_path / "override.yaml"
    base.write_text("attention_type: scaled_dot\nhidden_size: 64\nlayer_sizes: [1, 2, 3]\ndropout: 0.1\n")
    override.write_text("hidden_size: 48\nlayer_sizes: [4, 5]\n")
    (sizes,) = parse_arguments((Sizes,), ["--config", str(base), str(override)])
    assert sizes == Sizes(attention_type="scaled_dot", hidden_size=48, layer_sizes=[4, 5], dropout=0.1)
    argv = ["--dropout", "0.3", "--config", str(base), str(override), "--hidden_size", "32", "--layer_sizes", "6"]
    (sizes,) = parse_arguments((Sizes,), argv)
    assert sizes == Sizes(attention_type="scaled_dot", hidden_size=32, layer_sizes=[6], dropout=0.3)


def test_a_null_in_a_later_preset_takes_the_setting_back_to_its_default(tmp_path):
    base, override = tmp_path / "base.yaml", tmp_path / "override.yaml"
    base.write_text("hidden_size: 64\ndropout: 0.1\n")
    override.write_text("dropout: null\nhidden_size:\n")
    assert parse_arguments((Sizes,), ["--config", str(base), str(override)]) == (Sizes(),)
    assert parse_arguments((Sizes,), ["--config", str(override), str(base)]) == (Sizes(hidden_size=64, dropout=0.1),)


def test_an_override_file_alone_changes_only_its_keys(tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text("layer_sizes: [4, 5]\n")
    assert parse_arguments((Sizes,), ["--config", str(override)]) == (Sizes(layer_sizes=[4, 5]),)


def test_each_preset_is_checked_and_config_needs_a_file(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("hidden_size: 48\n")
    bad.write_text("just a string\n")
    with pytest.raises(FileNotFoundError, match="--config .*nope.yaml: no such file"):
        parse_arguments((Sizes,), ["--config", str(good), str(tmp_path / "nope.yaml")])
    with pytest.raises(ValueError, match="--config .*bad.yaml: expected a mapping .* got str"):
        parse_arguments((Sizes,), ["--config", str(good), str(bad)])
    for argv in (["--config"], ["--config", "--hidden_size", "3"]):
        with pytest.raises(ValueError, match="--config needs one or more YAML file paths"):
            parse_arguments((Sizes,), argv)
    with pytest.raises(ValueError, match="--config is given twice"):
        parse_arguments((Sizes,), ["--config", str(good), "--hidden_size", "3", "--config", str(good)])


@pytest.mark.parametrize("preset", sorted(set(CONFIGS.glob("*.yaml")) - {CONFIGS / "base.yaml"}), ids=lambda p: p.stem)
def test_every_preset_applies_after_the_base_and_writes_its_own_folder(preset):
    _, _, _, training = parse_arguments(
        (ComparisonArguments, ModelArguments, DataArguments, TranslationTrainingArguments),
        ["--config", str(CONFIGS / "base.yaml"), str(preset)],
    )
    assert training.output_dir == yaml.safe_load(preset.read_text())["output_dir"] != "outputs/demo"


@dataclass
class Process:
    """Stands in for the training arguments of one process: its level comes from `--log_level(_replica)`."""

    should_log: bool

    def get_process_log_level(self) -> int:
        return logging.DEBUG if self.should_log else logging.ERROR


@pytest.fixture
def logging_calls(monkeypatch):
    """The `logging.basicConfig` calls; the levels `setup_logging` changes are put back afterwards."""
    calls = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: calls.append(kwargs))
    package, before = logging.getLogger("hf_attention"), logging.getLogger("hf_attention").level
    verbosity = transformers.logging.get_verbosity(), datasets.logging.get_verbosity()
    yield calls
    package.setLevel(before)
    transformers.logging.set_verbosity(verbosity[0])
    datasets.logging.set_verbosity(verbosity[1])


def assert_levels(level: int):
    assert logging.getLogger("hf_attention").level == level
    assert transformers.logging.get_verbosity() == level
    assert datasets.logging.get_verbosity() == level


@pytest.mark.parametrize(("main_process", "level"), [(True, logging.DEBUG), (False, logging.ERROR)])
def test_setup_logging_follows_the_training_arguments(logging_calls, main_process, level):
    assert setup_logging(Process(should_log=main_process)) == level
    assert_levels(level)
    # Other libraries' loggers: INFO on the main process, the process's level on the others.
    assert [call["level"] for call in logging_calls] == [logging.INFO if main_process else level]


@pytest.mark.parametrize(("rank", "level"), [("0", logging.INFO), ("1", logging.WARNING)])
def test_setup_logging_without_training_arguments_follows_the_launchers_rank(logging_calls, monkeypatch, rank, level):
    monkeypatch.setenv("RANK", rank)
    assert setup_logging() == level
    assert_levels(level)
    assert [call["level"] for call in logging_calls] == [level]
