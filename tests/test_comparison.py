"""hf_attention.comparison: reused checkpoints are checked, bad arguments fail before any training."""

import json
from pathlib import Path

import pytest

from hf_attention.comparison import ComparisonArguments, compare_attention_types, parse_checkpoints


def _saved_config(folder: Path, attention_type: str) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"attention_type": attention_type}))
    return folder


def test_checkpoints_are_checked(tmp_path):
    none_dir = _saved_config(tmp_path / "n", "none")
    dot_dir = _saved_config(tmp_path / "d", "scaled_dot")
    types = ["none", "bahdanau", "scaled_dot"]
    assert parse_checkpoints([f"none={none_dir}", f"scaled_dot={dot_dir}"], types) == {
        "none": none_dir,
        "scaled_dot": dot_dir,
    }
    with pytest.raises(ValueError, match="'outputs/x': expected TYPE=DIR"):
        parse_checkpoints(["outputs/x"], types)
    with pytest.raises(ValueError, match=r"attention type 'general' is not among the compared ones \(none, bahdanau"):
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


def test_comparison_refuses_bad_arguments_before_training(tmp_path):
    from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments

    data = DataArguments(corpus="reversal", src_lang="src", tgt_lang="tgt", synthetic_size=10, test_size=100)
    training = TranslationTrainingArguments(output_dir=str(tmp_path), report_to="none")

    def compare(**arguments):
        compare_attention_types(ComparisonArguments(**arguments), ModelArguments(), data, training)

    with pytest.raises(ValueError, match=r"--attention_types \['luong'\]: choose from bahdanau, scaled_dot"):
        compare(attention_types=["none", "luong"])
    with pytest.raises(ValueError, match="--plot_metric 'rouge'"):
        compare(plot_metric="rouge")
    # Reversal lengths 4-12 leave the bucket 1-3 empty: refused at once, not after hours of training.
    with pytest.raises(
        ValueError, match=r"length buckets 1-3 hold fewer than 20 items \(counts 1-3: 0, 4-7: 36, 8\+: 64\)"
    ):
        compare(bucket_edges=[1, 4, 8])
    assert not list(tmp_path.iterdir())
