"""hf_attention.arguments: the adjustments both training loops make to the training arguments."""

from unittest import mock

import pytest
from transformers import Seq2SeqTrainingArguments

from hf_attention import arguments as arguments_module
from hf_attention.arguments import TranslationTrainingArguments


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
