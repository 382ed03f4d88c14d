"""Running the training scripts in subprocesses, on one process or several (shared by the script tests).

Run as a script, it runs a training script and checks how it ends (`checked`):

    python tests/launching.py [--budget_clock SECONDS_PER_READING] scripts/NAME.py ARGUMENTS...
"""

import os
import runpy
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

# A few steps of a tiny model on the reversal task: seconds, not minutes.
TINY = [
    "--config", str(REPO_ROOT / "configs" / "base.yaml"), str(REPO_ROOT / "configs" / "reversal.yaml"),
    "--synthetic_size", "256", "--validation_size", "16", "--test_size", "12",
    "--hidden_size", "32", "--max_steps", "6", "--per_device_train_batch_size", "16",
    "--eval_strategy", "steps", "--eval_steps", "3", "--save_strategy", "steps", "--save_steps", "3",
    "--load_best_model_at_end", "true", "--metric_for_best_model", "bleu", "--generation_num_beams", "2",
    "--plot_examples", "1", "--disable_tqdm", "true",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command: list[str], env: dict | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `command` from the repository root, offline; fail the test with its stderr if it fails (or, with
    `timeout`, if it runs longer: processes waiting on each other)."""
    result = subprocess.run(
        command, capture_output=True, text=True, env=env or OFFLINE, cwd=REPO_ROOT, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def script(name: str, *arguments: str) -> list[str]:
    """`python scripts/NAME` with `arguments`, one process."""
    return [sys.executable, str(REPO_ROOT / "scripts" / name), *arguments]


def torchrun(processes: int, name: str, *arguments: str) -> list[str]:
    """`scripts/NAME` on `processes` CPU processes with torchrun (gloo)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_port", str(free_port()), str(REPO_ROOT / "scripts" / name), *arguments]  # fmt: skip


class FakeClock:
    """A `time` module for `hf_attention.budget` whose `monotonic()` is `seconds_per_reading` later at each call:
    a time budget then runs out after a number of readings, however busy the machine is."""

    def __init__(self, seconds_per_reading: float):
        self.seconds_per_reading = seconds_per_reading
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += self.seconds_per_reading
        return self.now


def checked(command: list[str], budget_clock: float | None = None) -> list[str]:
    """`command` (from `script`, `torchrun` or an `accelerate launch`) with its training script run by this file,
    which fails a script that leaves its process group alive at exit: a gloo worker thread that frees a finished
    collective's tensors once the interpreter is shutting down aborts the process.

    With `budget_clock`, the budget's clock is `FakeClock(budget_clock)` on the main process and r + 1 times as
    fast on the process of rank r, so that processes going by their own clocks would stop at different steps.
    """
    index = next(i for i, part in enumerate(command) if part.startswith(str(REPO_ROOT / "scripts")))
    clock = [] if budget_clock is None else ["--budget_clock", str(budget_clock)]
    return [*command[:index], __file__, *clock, *command[index:]]


if __name__ == "__main__":
    import torch.distributed

    import hf_attention.budget

    arguments = sys.argv[1:]
    if arguments[0] == "--budget_clock":
        rank = int(os.environ.get("RANK", "0"))
        hf_attention.budget.time = FakeClock(float(arguments[1]) * (1 + rank))
        arguments = arguments[2:]
    sys.argv = arguments
    runpy.run_path(arguments[0], run_name="__main__")
    if torch.distributed.is_initialized():
        sys.exit(f"{arguments[0]} left its process group alive at exit (destroy_process_group)")
