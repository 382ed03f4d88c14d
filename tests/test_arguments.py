"""hf_attention.arguments: the adjustments both training loops make to the training arguments."""

from unittest import mock

import pytest
from transformers import Seq2SeqTrainingArguments

from hf_attention import arguments as arguments_module
from hf_attention.arguments import DataArguments, TranslationTrainingArguments
from hf_attention.cli import parse_arguments


@pytest.mark.parametrize("has_kernels", [True, False])
def test_bf16_on_a_cpu_without_bf16_kernels_trains_in_float32(has_kernels, tmp_path, caplog):
    arguments = Seq2SeqTrainingArguments(output_dir=str(tmp_path), use_cpu=True, bf16=True, report_to=[])
    with mock.patch.object(arguments_module, "cpu_has_bf16_kernels", return_value=has_kernels):
        with caplog.at_level("WARNING", logger="hf_attention.arguments"):
            arguments_module.resolve_cpu_precision(arguments)
    assert arguments.bf16 is has_kernels
    assert ("bf16 would be emulated" in caplog.text) is not has_kernels


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("max_train_minutes", 0.0, "max_train_minutes=0.0 must be a positive number of minutes"),
     ("max_tokens_per_batch", 0, "max_tokens_per_batch=0 must be a positive number of tokens")],
)  # fmt: skip
def test_budgets_below_one_are_refused(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        TranslationTrainingArguments(output_dir=str(tmp_path), report_to=[], **{field: value})


@pytest.mark.parametrize("beams", [0, -2])
def test_generation_num_beams_below_one_is_refused_at_start(tmp_path, beams):
    with pytest.raises(ValueError, match=f"--generation_num_beams {beams}: expected a whole number >= 1"):
        TranslationTrainingArguments(output_dir=str(tmp_path), report_to=[], generation_num_beams=beams)
    # Through the command line as a user gives it: refused while parsing, before any data is read.
    with pytest.raises(ValueError, match=f"--generation_num_beams {beams}"):
        parse_arguments((DataArguments, TranslationTrainingArguments), ["--output_dir", str(tmp_path),
                        "--generation_num_beams", str(beams)])  # fmt: skip


@pytest.mark.parametrize("penalty", [float("nan"), float("inf"), 0.0, -0.5])
def test_a_length_penalty_that_is_not_finite_and_positive_is_refused(penalty):
    with pytest.raises(ValueError, match=f"--length_penalty {penalty}: expected a finite number > 0"):
        DataArguments(length_penalty=penalty)
