"""hf_attention.benchmarking: the peer is matched in size and bad arguments are refused.
(Nothing here is timed: speeds live in scripts/benchmark.py.)"""

import pytest

from hf_attention.benchmarking import BenchmarkArguments, build_benchmark_model, build_marian


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
