"""scripts/train_accelerate.py on 1 and 2 CPU processes: the launch must not change the model.

Two processes run under `accelerate launch` with the shipped multi-GPU config (ACCELERATE_USE_CPU=1 turns it into
gloo data parallelism on CPUs), exactly as a user with GPUs would launch it.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.commands.config.config_args import ClusterConfig
from launching import OFFLINE, REPO_ROOT, TINY, checked, free_port, run, script, torchrun
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import AutoModelForSeq2SeqLM

from hf_attention.checkpoints import TrainingProgress

# 13 validation pairs in batches of 4: 2 processes get 4 + 4, 4 + 1 and Accelerate repeats 3 to even them out.
SMALL = [*TINY, "--validation_size", "13", "--per_device_eval_batch_size", "4", "--plot_examples", "0",
         "--logging_steps", "1", "--load_best_model_at_end", "false"]  # fmt: skip


def accelerate_launch(processes: int, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch",
            "--config_file", str(REPO_ROOT / "configs" / "accelerate" / "multi_gpu.yaml"),
            "--num_processes", str(processes), "--main_process_port", str(free_port()), "--mixed_precision", "no",
            str(REPO_ROOT / "scripts" / "train_accelerate.py"), *arguments]  # fmt: skip


CPU_PROCESSES = {**OFFLINE, "ACCELERATE_USE_CPU": "1"}


def history(output_dir: Path, key: str) -> list[dict]:
    """The logged records that have `key`, without the throughput (a timing)."""
    lines = (output_dir / "log_history.jsonl").read_text().splitlines()
    records = [record for record in map(json.loads, lines) if key in record]
    return [{name: value for name, value in record.items() if name != "target_tokens_per_s"} for record in records]


def assert_same_weights(first: Path, second: Path, atol: float) -> None:
    one, two = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert one.keys() == two.keys()
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, atol=atol, rtol=atol, msg=name)


@pytest.fixture(scope="module", params=["bahdanau", "scaled_dot"])
def one_and_two_processes(request, tmp_path_factory) -> tuple[Path, Path]:
    """The same training on 1 process with batch 16 and on 2 processes with batch 8 each."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    common = [*SMALL, "--attention_type", request.param]
    run(script("train_accelerate.py", *common, "--per_device_train_batch_size", "16", "--output_dir", str(one)))
    run(checked(accelerate_launch(2, *common, "--per_device_train_batch_size", "8", "--output_dir", str(two))),
        CPU_PROCESSES)  # fmt: skip
    return one, two


def test_two_processes_run_and_save_a_loadable_model(one_and_two_processes):
    _, two = one_and_two_processes
    results = json.loads((two / "train_results.json").read_text())
    assert (results["world_size"], results["distributed_type"], results["global_batch_size"]) == (2, "MULTI_CPU", 16)
    assert results["steps"] == 6
    model = AutoModelForSeq2SeqLM.from_pretrained(two)
    saved = load_file(two / "model.safetensors")
    for name, parameter in model.state_dict().items():
        torch.testing.assert_close(parameter, saved.get(name, saved["model.encoder.embed_tokens.weight"]), msg=name)
    assert sorted(path.name for path in two.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    assert (two / "learning_curves.png").is_file()


def test_two_processes_train_exactly_like_one(one_and_two_processes):
    """Same loss at every step, same final weights: catches a loss averaged per process instead of per token, a
    learning-rate schedule stepped twice, and batches that differ between the launches."""
    one, two = one_and_two_processes
    losses_one, losses_two = [r["loss"] for r in history(one, "loss")], [r["loss"] for r in history(two, "loss")]
    assert len(losses_one) == 6
    assert losses_two == pytest.approx(losses_one, rel=1e-5)  # measured: 2e-7 apart
    rates = [r["learning_rate"] for r in history(one, "learning_rate")]
    assert [r["learning_rate"] for r in history(two, "learning_rate")] == rates
    assert_same_weights(one, two, atol=1e-5)


def test_gradient_accumulation_trains_like_a_bigger_batch(one_and_two_processes, tmp_path):
    """1 process, batch 8, 2 accumulation steps = batch 16: `backward` divides by the steps, the loop undoes it."""
    one, _ = one_and_two_processes
    attention_type = json.loads((one / "config.json").read_text())["attention_type"]
    run(script("train_accelerate.py", *SMALL, "--attention_type", attention_type, "--eval_strategy", "no",
               "--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "2",
               "--output_dir", str(tmp_path)))  # fmt: skip
    assert [r["loss"] for r in history(tmp_path, "loss")] == pytest.approx([r["loss"] for r in history(one, "loss")])
    assert_same_weights(one, tmp_path, atol=1e-5)


def test_validation_on_two_processes_scores_every_pair_once(one_and_two_processes, tmp_path):
    """The same weights scored on 1 and on 2 processes (batches of 1: the same arithmetic for every pair): 13 pairs,
    of which the second process's last is a repeat that `gather_for_metrics` must drop."""
    trained, _ = one_and_two_processes
    assert [record["eval_samples"] for record in history(trained, "eval_bleu")] == [13, 13]
    evaluate = [*SMALL, "--init_from", str(trained), "--max_steps", "0", "--per_device_eval_batch_size", "1"]
    run(script("train_accelerate.py", *evaluate, "--report_to", "tensorboard", "--output_dir", str(tmp_path / "one")))
    run(accelerate_launch(2, *evaluate, "--output_dir", str(tmp_path / "two")), CPU_PROCESSES)
    scores_one, scores_two = history(tmp_path / "one", "eval_bleu"), history(tmp_path / "two", "eval_bleu")
    assert len(scores_one) == 1 and scores_one[0]["eval_samples"] == 13
    assert scores_one[0]["eval_chrf"] > 0  # something to compare
    assert scores_two == scores_one
    (events,) = (tmp_path / "one" / "runs").glob("events.out.tfevents.*")  # accelerator.log -> TensorBoard
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert accumulator.Scalars("eval_bleu")[0].value == pytest.approx(scores_one[0]["eval_bleu"])


def test_resume_ends_exactly_like_an_uninterrupted_run(tmp_path):
    """2 processes, dropout on (per-process RNG states), and a checkpoint in the second epoch (skipped batches)."""
    common = [*SMALL, "--synthetic_size", "70", "--max_steps", "10", "--per_device_train_batch_size", "8",
              "--save_steps", "6", "--eval_strategy", "no", "--dropout", "0.3"]  # fmt: skip
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run(accelerate_launch(2, *common, "--output_dir", str(full)), CPU_PROCESSES)
    assert [record["epoch"] for record in history(full, "loss")][5] == 1  # 70 pairs: 5 steps an epoch
    run(accelerate_launch(2, *common, "--output_dir", str(resumed), "--resume_from_checkpoint",
                          str(full / "checkpoint-6")), CPU_PROCESSES)  # fmt: skip
    assert [record["step"] for record in history(resumed, "loss")] == [7, 8, 9, 10]
    assert history(resumed, "loss") == history(full, "loss")[6:]  # losses, learning rates, epochs
    assert_same_weights(full, resumed, atol=0.0)  # measured: bit-identical


def test_torchrun_without_use_cpu_is_refused_not_run_twice(tmp_path):
    """On a machine without GPUs, torchrun with a GPU Accelerator would start 2 independent single-process runs."""
    command = torchrun(2, "train_accelerate.py", *SMALL, "--max_steps", "1", "--output_dir", str(tmp_path))
    if torch.cuda.is_available():
        pytest.skip("GPUs present: the launch is a real 2-process run")
    result = subprocess.run(command, capture_output=True, text=True, env=OFFLINE, cwd=REPO_ROOT)
    assert result.returncode != 0
    assert "launched as 2 processes (WORLD_SIZE) but Accelerate runs 1" in result.stderr


def test_push_to_hub_without_a_repo_id_is_refused_before_training(tmp_path):
    command = script("train_accelerate.py", *SMALL, "--push_to_hub", "true", "--output_dir", str(tmp_path))
    result = subprocess.run(command, capture_output=True, text=True, env=OFFLINE, cwd=REPO_ROOT)
    assert result.returncode != 0 and "--push_to_hub needs --hub_model_id namespace/name" in result.stderr
    assert not (tmp_path / "training_run.json").exists()


# A time budget of 3 s on a clock that moves 0.1 s at each reading (2 readings a step): about 15 steps, however busy
# the machine; a checkpoint every 4 steps, validation only where the budget stops the run.
BUDGET = [*SMALL, "--max_steps", "100000", "--max_train_minutes", "0.05", "--warmup_steps", "0",
          "--eval_steps", "100000", "--save_steps", "4"]  # fmt: skip
SECONDS_PER_READING = 0.1


def last_step(output_dir: Path) -> int:
    return json.loads((output_dir / "train_results.json").read_text())["steps"]


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("budget")
    command = script("train_accelerate.py", *BUDGET, "--per_device_train_batch_size", "16", "--output_dir",
                     str(output_dir))  # fmt: skip
    run(checked(command, budget_clock=SECONDS_PER_READING))
    return output_dir


def test_time_budget_stops_with_a_saved_evaluated_checkpoint_and_a_finished_schedule(budget_run):
    step = last_step(budget_run)
    assert 8 < step < 100000
    assert [record["step"] for record in history(budget_run, "loss")] == list(range(1, step + 1))
    assert [record["step"] for record in history(budget_run, "eval_bleu")] == [step]
    rates = [record["learning_rate"] for record in history(budget_run, "learning_rate")]
    assert rates[0] > 0.5 * max(rates) and rates[-1] == pytest.approx(0.0, abs=1e-12)  # ended with the time
    assert rates == sorted(rates, reverse=True)
    minutes = [record["train_minutes"] for record in history(budget_run, "step")]
    assert minutes == sorted(minutes) and 0.05 <= minutes[-1] < 0.1  # every record stamped with the time spent
    checkpoint = budget_run / f"checkpoint-{step}"  # saved where the budget stopped the run
    progress = json.loads((checkpoint / "training_progress.json").read_text())
    assert progress["completed_steps"] == step and progress["elapsed_seconds"] >= 3.0
    assert_same_weights(checkpoint, budget_run, atol=0.0)  # the final model is the stopped step's
    assert json.loads((budget_run / "test_results.json").read_text())["test_samples"] == 12


def test_two_processes_stop_a_time_budget_at_the_same_step(budget_run, tmp_path):
    """Rank 1's clock runs twice as fast as the main process's: going by it, rank 1 would stop first and wait for a
    collective the main process never joins. Both follow the main process's clock, which has read the same times as
    that of the 1-process run: same stop, same learning rates."""
    command = accelerate_launch(2, *BUDGET, "--per_device_train_batch_size", "8", "--output_dir", str(tmp_path))
    run(checked(command, budget_clock=SECONDS_PER_READING), CPU_PROCESSES, timeout=900)
    step = last_step(tmp_path)
    assert step == last_step(budget_run)
    # Each process wrote its part of the checkpoint of the last step.
    assert sorted(path.name for path in (tmp_path / f"checkpoint-{step}").glob("random_states_*.pkl")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]
    rates = [record["learning_rate"] for record in history(tmp_path, "learning_rate")]
    assert rates == [record["learning_rate"] for record in history(budget_run, "learning_rate")]
    assert_same_weights(budget_run, tmp_path, atol=1e-5)


def test_a_resume_keeps_the_time_already_spent(budget_run, tmp_path):
    """Resumed from checkpoint-4, the run gets what was left of the budget, not a new one: it stops where the
    uninterrupted run did (or a step before: resuming reads the clock once more)."""
    command = script("train_accelerate.py", *BUDGET, "--per_device_train_batch_size", "16", "--output_dir",
                     str(tmp_path), "--resume_from_checkpoint", str(budget_run / "checkpoint-4"))  # fmt: skip
    run(checked(command, budget_clock=SECONDS_PER_READING))
    assert last_step(budget_run) - 1 <= last_step(tmp_path) <= last_step(budget_run)
    assert [record["step"] for record in history(tmp_path, "loss")][0] == 5


@pytest.mark.parametrize("elapsed", [-1.0, "60", True, float("nan"), float("inf")])
def test_a_checkpoint_with_an_impossible_time_spent_is_refused(tmp_path, elapsed):
    TrainingProgress(completed_steps=4, elapsed_seconds=12.5).save(tmp_path)
    assert TrainingProgress.load(tmp_path) == TrainingProgress(completed_steps=4, elapsed_seconds=12.5)
    (tmp_path / "training_progress.json").write_text(json.dumps({"completed_steps": 4, "elapsed_seconds": elapsed}))
    with pytest.raises(ValueError, match="elapsed_seconds must be a non-negative number of seconds"):
        TrainingProgress.load(tmp_path)


def test_a_schedule_that_cannot_follow_a_time_budget_is_refused_before_training(tmp_path):
    command = script("train_accelerate.py", *SMALL, "--max_train_minutes", "5", "--lr_scheduler_type", "polynomial",
                     "--output_dir", str(tmp_path))  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=OFFLINE, cwd=REPO_ROOT)
    assert result.returncode != 0 and "--lr_scheduler_type polynomial cannot follow a time budget" in result.stderr
    assert not (tmp_path / "training_run.json").exists()


@pytest.mark.parametrize(
    ("name", "distributed_type", "processes", "machines"),
    [("single_gpu", "NO", 1, 1), ("multi_gpu", "MULTI_GPU", 4, 1), ("multi_node", "MULTI_GPU", 16, 2)],
)
def test_accelerate_configs_are_valid(name, distributed_type, processes, machines):
    config = ClusterConfig.from_yaml_file(str(REPO_ROOT / "configs" / "accelerate" / f"{name}.yaml"))
    assert (config.distributed_type, config.num_processes, config.num_machines) == (
        distributed_type,
        processes,
        machines,
    )
    assert config.mixed_precision == "bf16" and not config.use_cpu


# 1 process, a checkpoint every 3 of 6 steps, every step logged to the JSONL history and TensorBoard.
RESUMABLE = [*SMALL, "--max_steps", "6", "--save_steps", "3", "--eval_strategy", "no", "--report_to", "tensorboard"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    run(script("train_accelerate.py", *RESUMABLE, "--output_dir", str(output_dir)))
    return output_dir


def tensorboard_steps(output_dir: Path, tag: str) -> list[int]:
    """The steps of `tag` as TensorBoard shows them (its purge of events a restarted run logs again included)."""
    accumulator = EventAccumulator(str(output_dir / "runs"))
    accumulator.Reload()
    return [event.step for event in accumulator.Scalars(tag)]


class CreatesAFileWhenUnpickled:
    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_checkpoints_keep_the_loop_position_as_json_and_a_resume_reads_it(uninterrupted, tmp_path):
    checkpoint = uninterrupted / "checkpoint-3"
    assert json.loads((checkpoint / "training_progress.json").read_text()) == {"completed_steps": 3}
    assert not list(checkpoint.glob("custom_checkpoint_*"))  # no pickled progress
    run(script("train_accelerate.py", *RESUMABLE, "--output_dir", str(tmp_path), "--resume_from_checkpoint",
               str(checkpoint)))  # fmt: skip
    assert [record["step"] for record in history(tmp_path, "loss")] == [4, 5, 6]
    assert history(tmp_path, "loss") == history(uninterrupted, "loss")[3:]
    assert_same_weights(uninterrupted, tmp_path, atol=0.0)


def test_a_pickle_in_a_checkpoint_is_refused_never_unpickled(uninterrupted, tmp_path):
    crafted, marker = tmp_path / "checkpoint-3", tmp_path / "code-ran"
    shutil.copytree(uninterrupted / "checkpoint-3", crafted)
    torch.save({"completed_steps": CreatesAFileWhenUnpickled(marker)}, crafted / "custom_checkpoint_0.pkl")
    command = script("train_accelerate.py", *RESUMABLE, "--output_dir", str(tmp_path / "out"),
                     "--resume_from_checkpoint", str(crafted))  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=OFFLINE, cwd=REPO_ROOT)
    assert result.returncode != 0
    assert "custom_checkpoint_0.pkl" in result.stderr and "not loaded" in result.stderr
    assert not marker.exists()
    assert not (tmp_path / "out" / "training_run.json").exists()  # refused before the run started


@pytest.fixture(scope="module")
def resumed_in_place(uninterrupted, tmp_path_factory) -> Path:
    """The uninterrupted run's folder resumed from its own checkpoint-3, as after a run killed after step 6 while a
    checkpoint-5 was being written (left as `checkpoint-5.partial`)."""
    output_dir = tmp_path_factory.mktemp("resumed") / "run"
    shutil.copytree(uninterrupted, output_dir)
    partial = output_dir / "checkpoint-5.partial"
    shutil.copytree(output_dir / "checkpoint-3", partial)
    run(script("train_accelerate.py", *RESUMABLE, "--output_dir", str(output_dir), "--resume_from_checkpoint",
               str(output_dir / "checkpoint-3")))  # fmt: skip
    return output_dir


def test_a_resume_removes_the_partial_checkpoints_a_killed_run_left(resumed_in_place):
    assert not list(resumed_in_place.glob("*.partial"))
    assert sorted(path.name for path in resumed_in_place.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]


def test_a_resume_logs_each_step_once(uninterrupted, resumed_in_place):
    assert [record["step"] for record in history(resumed_in_place, "loss")] == [1, 2, 3, 4, 5, 6]
    assert history(resumed_in_place, "loss") == history(uninterrupted, "loss")
    assert len(list((resumed_in_place / "runs").glob("events.out.tfevents.*"))) == 2  # one file per start
    assert tensorboard_steps(resumed_in_place, "loss") == [1, 2, 3, 4, 5, 6]
