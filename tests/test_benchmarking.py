"""hf_attention.benchmarking: the peer is matched in size, the translation rows score what translate gives, and bad
arguments are refused. (Nothing here asserts a speed: speeds live in scripts/benchmark.py.)"""

import dataclasses
import json
import os

import pytest
import torch

from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration
from hf_attention.benchmarking import (
    COMPILED_GRAPH_LABEL,
    COMPILED_GRAPH_PREFIX,
    BenchmarkArguments,
    build_benchmark_model,
    build_marian,
    markdown_report,
    profile_training,
    run_benchmark,
)
from hf_attention.evaluation import corpus_scores
from hf_attention.tokenization import train_tokenizer
from hf_attention.translation import quantize_int8, translate


def test_marian_peer_is_within_ten_percent_of_our_size():
    args = BenchmarkArguments(output_dir="unused")
    ours = build_benchmark_model(args, "bahdanau").num_parameters()
    marian = build_marian(args, ours)
    assert abs(marian.num_parameters() - ours) <= 0.1 * ours
    assert (marian.config.d_model, marian.config.encoder_layers, marian.config.decoder_layers) == (256, 2, 2)


@pytest.mark.parametrize(("name", "value"), [("attention_types", ["luong"]), ("dtype", "int8"), ("device", "tpu")])
def test_bad_arguments_are_refused(name, value):
    with pytest.raises(ValueError, match=name):
        BenchmarkArguments(output_dir="unused", **{name: value})


def test_missing_translation_model_or_translations_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--translation_only true needs --translation_model"):
        BenchmarkArguments(output_dir="unused", translation_only=True)
    with pytest.raises(FileNotFoundError, match="no test_translations.jsonl there"):
        BenchmarkArguments(output_dir="unused", translation_model=str(tmp_path))


def test_translation_rows_score_the_translations_of_the_float_and_int8_models(tmp_path):
    sources = ["Ich gehe nach Hause.", "Wie geht es dir?", "Das ist gut.", "Er geht heim!", "Ja."]
    references = ["I am going home.", "How are you?", "That is good.", "He goes home!", "Yes."]
    torch.manual_seed(0)
    tokenizer = train_tokenizer((sources + references) * 10, vocab_size=80, model_max_length=32)
    config = Seq2SeqAttentionConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, dropout=0.0)  # fmt: skip
    model = Seq2SeqAttentionForConditionalGeneration(config).eval()
    model.generation_config.max_length, model.generation_config.num_beams = 10, 2
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    rows = [{"source": source, "reference": reference} for source, reference in zip(sources, references, strict=True)]
    (folder / "test_translations.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = BenchmarkArguments(output_dir=str(tmp_path / "out"), dtype="float32", translation_model=str(folder),
                              translation_only=True, translation_batch_sizes=[2])  # fmt: skip
    records = run_benchmark(args)
    assert [record["model"] for record in records] == [
        "Seq2SeqAttention (float)", "Seq2SeqAttention (int8)", "MarianMTModel (same lengths)"
    ]  # fmt: skip
    assert {
        (record["task"], record["sentences"], record["num_beams"], record["batch_size"]) for record in records
    } == {("translate", 5, 2, 2)}
    for record, candidate in zip(records, (model, quantize_int8(model)), strict=False):
        expected = corpus_scores(translate(candidate, tokenizer, sources, batch_size=2), references)
        assert (record["bleu"], record["chrf"]) == (round(expected["bleu"], 2), round(expected["chrf"], 2))
    report = markdown_report(records, args)
    assert f"| Seq2SeqAttention (float) | 2 | {records[0]['seconds']} | {records[0]['bleu']} |" in report
    assert "Training (batch" not in report
    assert json.loads((tmp_path / "out" / "benchmark.json").read_text()) == records


def test_report_of_a_run_with_model_rows_and_translation_rows_has_both_tables():
    args = BenchmarkArguments(output_dir="unused", train_lengths=[16], new_tokens=[8], num_beams=[1])
    train = {"model": "Seq2SeqAttention", "attention_type": "bahdanau", "compile_additive_attention": None,
             "params": 10, "task": "train", "src_len": 16, "tokens_per_s": 123.4, "peak_mem_mb": 5.0}  # fmt: skip
    translation = {"task": "translate", "model": "Seq2SeqAttention (int8)", "translation_model": "outputs/demo",
                   "sentences": 3, "num_beams": 5, "batch_size": 100, "seconds": 1.5, "bleu": 7.1,
                   "chrf": 27.0}  # fmt: skip
    report = markdown_report([translation, train], args)
    assert "| bahdanau | 10 | 123.4 | 5.0 |" in report
    assert "| Seq2SeqAttention (int8) | 100 | 1.5 | 7.1 | 27.0 |" in report


def test_training_profile_ranks_operators_and_counts_the_compiled_kernels_as_one():
    # Big enough for the fused kernels (4 x 4 x 32 x 32 x 16 score elements), small enough to be quick.
    args = BenchmarkArguments(output_dir="unused", hidden_size=64, num_hidden_layers=1, train_batch_size=4,
                              warmup=1, repeats=2, profile_operators=200, dtype="float32")  # fmt: skip
    torch.manual_seed(0)
    profile = profile_training(build_benchmark_model(args, "bahdanau"), args, length=32)
    operators = profile["operators"]
    names = [op["operator"] for op in operators]
    assert names.count(COMPILED_GRAPH_LABEL) == 1
    assert not any(name.startswith(COMPILED_GRAPH_PREFIX) for name in names)
    assert "aten::mm" in names
    shares = [op["share"] for op in operators]
    assert shares == sorted(shares, reverse=True)
    assert len(operators) < 200  # all of them: their shares, each rounded to 0.001, add up to 1
    assert sum(shares) == pytest.approx(1.0, abs=0.0005 * len(operators))
    for op in operators:
        # Each figure is rounded (milliseconds to 0.1, shares to 0.001): their product is off by those roundings,
        # scaled by the other figure, so by more on a slower (busier) machine.
        rounding = 0.05 + 0.0005 * (profile["step_ms"] + 0.05) + 0.05 * op["share"]
        assert abs(op["ms_per_step"] - op["share"] * profile["step_ms"]) <= rounding + 1e-9, op
    assert len(profile_training(build_benchmark_model(args, "none"), replace_top(args, 3), length=8)["operators"]) == 3

    record = {"model": "Seq2SeqAttention", "attention_type": "bahdanau", "compile_additive_attention": None,
              "task": "profile", "src_len": 32, **profile}  # fmt: skip
    report = markdown_report([record], args)
    assert f"| bahdanau | 32 | {profile['step_ms']} | `{names[0]}` {operators[0]['ms_per_step']} (" in report


def test_training_rounds_interleave_the_models_and_report_the_median_of_each_cell(monkeypatch, tmp_path):
    """Each round times every model at every length before the next round starts; a record holds each round's speed
    and their median."""
    import hf_attention.benchmarking as benchmarking

    calls = []

    def fake_time_training(model, args, length):
        calls.append((type(model).__name__, getattr(model.config, "attention_type", "marian"), length))
        return float(len(calls))

    monkeypatch.setattr(benchmarking, "time_training", fake_time_training)
    monkeypatch.setattr(benchmarking, "time_generation", lambda *args, **kwargs: 1.0)
    args = BenchmarkArguments(output_dir=str(tmp_path), attention_types=["none", "scaled_dot"], hidden_size=16,
                              num_hidden_layers=1, num_attention_heads=2, train_lengths=[4, 8], new_tokens=[2],
                              num_beams=[1], memory=False, first_step=False, train_rounds=3)  # fmt: skip
    records = run_benchmark(args)
    ours = "Seq2SeqAttentionForConditionalGeneration"
    models = [(ours, "none"), (ours, "scaled_dot"), ("MarianMTModel", "marian")]
    one_round = [(name, kind, length) for length in (4, 8) for name, kind in models]
    assert calls == one_round * 3
    train = {(record["attention_type"], record["src_len"]): record for record in records if record["task"] == "train"}
    # the call counter is the fake speed: cell k of a round of 6 gets k, k + 6, k + 12
    for index, (_, kind, length) in enumerate(one_round, start=1):
        record = train["transformer" if kind == "marian" else kind, length]
        assert record["tokens_per_s_rounds"] == [index, index + 6, index + 12]
        assert record["tokens_per_s"] == index + 6
    assert "target tokens/s, the median of 3 interleaved rounds" in markdown_report(records, args)
    with pytest.raises(ValueError, match="--train_rounds 0"):
        BenchmarkArguments(output_dir="unused", train_rounds=0)


def replace_top(args: BenchmarkArguments, top: int) -> BenchmarkArguments:
    return dataclasses.replace(args, profile_operators=top)


def _report_variable(name, queue):
    import os

    queue.put(os.environ.get(name))


def test_memory_workers_run_with_the_default_allocator_and_the_caller_keeps_its_setting(monkeypatch):
    """The CPU memory figure is the resident-set rise of one step, which glibc settings that keep freed blocks hide."""
    import multiprocessing

    from hf_attention.benchmarking import _environment_variable

    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=4294967295")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with _environment_variable("GLIBC_TUNABLES", None):
        worker = context.Process(target=_report_variable, args=("GLIBC_TUNABLES", queue))
        worker.start()
    assert queue.get() is None
    worker.join()
    assert os.environ["GLIBC_TUNABLES"] == "glibc.malloc.trim_threshold=4294967295"
