"""hf_attention.benchmarking: the peer is matched in size, and the targets are read off the records correctly.
(Nothing here is timed: speeds live in scripts/benchmark.py.)"""

import pytest

from hf_attention.benchmarking import BenchmarkArguments, build_marian, build_ours, check_targets


def test_marian_peer_is_within_ten_percent_of_our_size():
    args = BenchmarkArguments(output_dir="unused")
    ours = build_ours(args, "bahdanau").num_parameters()
    marian = build_marian(args, ours)
    assert abs(marian.num_parameters() - ours) <= 0.1 * ours
    assert (marian.config.d_model, marian.config.encoder_layers, marian.config.decoder_layers) == (256, 2, 2)


def record(attention_type, task, length, tokens_per_s, peak=None, num_beams=None, use_cache=None, compiled=False):
    model = "MarianMTModel" if attention_type == "transformer" else "Seq2SeqAttention"
    return {"model": model, "attention_type": attention_type, "task": task, "src_len": length, "tgt_len": length,
            "num_beams": num_beams, "use_cache": use_cache, "tokens_per_s": tokens_per_s, "peak_mem_mb": peak,
            "compile_additive_attention": None if model == "MarianMTModel" else compiled}  # fmt: skip


def test_targets_are_checked_against_the_right_records():
    records = [
        record("bahdanau", "train", 64, 900.0),
        record("bahdanau", "train", 64, 1200.0, compiled=True),
        record("bahdanau", "train", 256, 12.0, peak=120.0, compiled=True),
        record("scaled_dot", "train", 64, 1100.0),
        record("transformer", "train", 64, 1000.0),
        record("bahdanau", "train", 256, 10.0, peak=300.0),
        record("scaled_dot", "train", 256, 10.0, peak=100.0),
        record("bahdanau", "generate", 256, 600.0, num_beams=1, use_cache=True),
        record("bahdanau", "generate", 256, 100.0, num_beams=1, use_cache=False),
        record("bahdanau", "generate", 32, 700.0, num_beams=1, use_cache=True),
    ]
    lines = check_targets(records)
    assert "bahdanau, beam 1: cache speed-up at 256 new tokens 6.0x (>= 5x): met" in lines
    assert "bahdanau, beam 1: time per token at 256 / at 32 new tokens 1.17 (<= 1.3): met" in lines
    assert "bahdanau: training tokens/s at length 64 = 0.90 x MarianMT's (>= 1): MISSED" in lines
    assert "bahdanau (compiled): training tokens/s at length 64 = 1.20 x MarianMT's (>= 1): met" in lines
    assert "bahdanau (compiled) peak training memory at length 256 = 1.20 x scaled_dot's (<= 1.5): met" in lines
    assert "scaled_dot: training tokens/s at length 64 = 1.10 x MarianMT's (>= 1): met" in lines
    assert "bahdanau peak training memory at length 256 = 3.00 x scaled_dot's (<= 1.5): MISSED" in lines


@pytest.mark.parametrize(("name", "value"), [("attention_types", ["luong"]), ("dtype", "int8"), ("device", "tpu")])
def test_bad_arguments_are_refused(name, value):
    with pytest.raises(ValueError, match=name):
        BenchmarkArguments(output_dir="unused", **{name: value})
