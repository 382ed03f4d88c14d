"""The GPU checks in one run, on a machine with a CUDA GPU (no test needs one); writes OUTPUT_DIR/gpu_checks.json.

    python scripts/gpu_checks.py --output_dir outputs/gpu [--quick true] [--train_steps 300]

1. the GPU's name and the date;
2. the fused additive kernels against eager on CUDA, values and gradients, in float32 and bfloat16;
3. host-device synchronisations per generated token, of the model's own decoding steps and of `generate`;
4. the benchmark (`scripts/benchmark.py --device cuda`, bf16 autocast) into OUTPUT_DIR/benchmark;
5. the main preset (configs/base.yaml) trained for `train_steps` steps on the GPU: source tokens/s and peak memory.
The main preset reads the default corpus (Debian's trans-de-en); on a machine without it, pass `--corpus PATH` with
a copy of /usr/share/trans/de-en.
"""

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser

from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.attention import additive_scores
from hf_attention.benchmarking import (
    BenchmarkArguments,
    build_benchmark_model,
    run_benchmark,
    synchronizations_per_token,
)
from hf_attention.cli import parse_arguments, setup_logging, yaml_to_arguments
from hf_attention.training_trainer import run_training

REPO_ROOT = Path(__file__).resolve().parent.parent
# Worst difference allowed per dtype, relative to the largest eager magnitude (bf16 keeps 8 bits of mantissa).
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 2e-2}


@dataclass
class GpuCheckArguments:
    output_dir: str = field(default="outputs/gpu")
    quick: bool = field(default=False, metadata={"help": "the benchmark's quick grid"})
    train_steps: int = field(default=300, metadata={"help": "training steps of the main preset"})
    corpus: str = field(default="ding", metadata={"help": "the main preset's corpus"})


def fused_against_eager(dtype: torch.dtype) -> dict:
    """Largest differences (relative to eager's largest magnitude) of fused vs eager scores and gradients."""
    generator = torch.Generator(device="cuda").manual_seed(0)
    shapes = {"query": (8, 4, 23, 64), "keys": (8, 4, 37, 64), "score_vector": (4, 64)}
    inputs = {
        name: torch.randn(size, device="cuda", generator=generator, dtype=dtype) for name, size in shapes.items()
    }
    upstream = torch.randn(8, 4, 23, 37, device="cuda", generator=generator, dtype=dtype)
    results = {}
    for compiled in (True, False):
        leaves = {name: tensor.clone().requires_grad_() for name, tensor in inputs.items()}
        scores = additive_scores(leaves["query"], leaves["keys"], leaves["score_vector"], compiled=compiled)
        scores.backward(upstream)
        results[compiled] = {"scores": scores.detach(), **{name: leaf.grad for name, leaf in leaves.items()}}
    differences = {
        name: ((results[True][name] - eager).abs().max() / eager.abs().max()).item()
        for name, eager in results[False].items()
    }
    return {"dtype": str(dtype), "relative_max_difference": differences,
            "passed": max(differences.values()) <= TOLERANCE[dtype]}  # fmt: skip


def train_main_preset(args: GpuCheckArguments) -> dict:
    """Train configs/base.yaml for `args.train_steps` steps on the GPU (bf16); the test split is scored at the end."""
    output_dir = Path(args.output_dir) / "train"
    argv = yaml_to_arguments(REPO_ROOT / "configs" / "base.yaml") + [
        "--corpus", args.corpus, "--output_dir", str(output_dir), "--use_cpu", "false", "--bf16", "true",
        "--max_steps", str(args.train_steps), "--max_train_minutes", "30", "--eval_strategy", "no",
        "--save_strategy", "no", "--load_best_model_at_end", "false", "--report_to", "none",
    ]  # fmt: skip
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataArguments, TranslationTrainingArguments), argv
    )
    # Set after parsing: the parser reads this `str | bool` field as a bool, which cannot say "non_padding".
    training_args.include_num_input_tokens_seen = "non_padding"
    setup_logging(training_args)
    torch.cuda.reset_peak_memory_stats()
    test_metrics = run_training(model_args, data_args, training_args)
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    speeds = [entry["train_tokens_per_second"] for entry in history if "train_tokens_per_second" in entry]
    return {"steps": args.train_steps, "source_tokens_per_s": speeds[-1] if speeds else None,
            "peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            "test_bleu": test_metrics.get("test_bleu")}  # fmt: skip


def main():
    (args,) = HfArgumentParser(GpuCheckArguments).parse_args_into_dataclasses()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_checks.py: error: no CUDA GPU is visible to torch")
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {"gpu": torch.cuda.get_device_name(), "date": datetime.date.today().isoformat(),
              "torch": torch.__version__}  # fmt: skip

    def save(name: str, value) -> None:
        report[name] = value
        (output_dir / "gpu_checks.json").write_text(json.dumps(report, indent=1))
        print(json.dumps({name: value}), flush=True)

    save("fused_against_eager", [fused_against_eager(dtype) for dtype in TOLERANCE])
    benchmark_args = BenchmarkArguments(output_dir=str(output_dir / "benchmark"), device="cuda", dtype="bfloat16",
                                        quick=args.quick)  # fmt: skip
    save("synchronizations_per_token", {
        name: synchronizations_per_token(build_benchmark_model(benchmark_args, name).cuda(), benchmark_args)
        for name in ("bahdanau", "scaled_dot", "none")
    })  # fmt: skip
    run_benchmark(benchmark_args)
    save("benchmark", str(output_dir / "benchmark" / "benchmark.md"))
    save("train_main_preset", train_main_preset(args))


if __name__ == "__main__":
    main()
