"""Speed and memory of every attention type against a matched MarianMT, in one run (hf_attention/benchmarking.py).

    python scripts/benchmark.py --quick                    # lengths 16/64, 32 new tokens, fewer repeats
    python scripts/benchmark.py                            # the full grid (lengths 16/64/256, 32/256 new tokens)
    python scripts/benchmark.py --device cuda              # on a GPU (bf16 autocast by default)
    python scripts/benchmark.py --quick --profile_operators 8   # and where each training step's time goes
    python scripts/benchmark.py --attention_types bahdanau --include_marian false --attention_chunk_size 1000000000000

Writes OUTPUT_DIR/benchmark.json (a list of records) and OUTPUT_DIR/benchmark.md (tables of them).
"""

from pathlib import Path

from transformers import HfArgumentParser

from hf_attention.benchmarking import BenchmarkArguments, run_benchmark


def main():
    (args,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses()
    run_benchmark(args)
    print((Path(args.output_dir) / "benchmark.md").read_text())


if __name__ == "__main__":
    main()
