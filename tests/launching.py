"""Running the training scripts in subprocesses, on one process or several (shared by the script tests)."""

import os
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


def run(command: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `command` from the repository root, offline; fail the test with its stderr if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, env=env or OFFLINE, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def script(name: str, *arguments: str) -> list[str]:
    """`python scripts/NAME` with `arguments`, one process."""
    return [sys.executable, str(REPO_ROOT / "scripts" / name), *arguments]


def torchrun(processes: int, name: str, *arguments: str) -> list[str]:
    """`scripts/NAME` on `processes` CPU processes with torchrun (gloo)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_port", str(free_port()), str(REPO_ROOT / "scripts" / name), *arguments]  # fmt: skip
