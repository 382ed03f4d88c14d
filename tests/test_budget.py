"""hf_attention.budget: the wall-clock stop and the learning-rate schedule that ends with the time budget."""

import math

import pytest
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from hf_attention.budget import WallClockBudget, budgeted_lr_schedule


def schedule(kind: str, fraction: list[float], warmup: int = 4, steps: int = 100):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    return optimizer, budgeted_lr_schedule(optimizer, kind, warmup, steps, lambda: fraction[0])


def lr_after(optimizer, scheduler, steps: int) -> float:
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
    return optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_schedule_decays_with_the_larger_of_steps_and_time(kind):
    decay = {"cosine": lambda p: 0.5 * (1 + math.cos(math.pi * p)), "linear": lambda p: 1 - p}[kind]
    fraction = [0.0]
    optimizer, scheduler = schedule(kind, fraction)
    assert lr_after(optimizer, scheduler, 2) == pytest.approx(2.0 * 2 / 4)  # warming up
    assert lr_after(optimizer, scheduler, 18) == pytest.approx(2.0 * decay(20 / 100))  # no time spent: by steps
    fraction[0] = 0.5
    assert lr_after(optimizer, scheduler, 1) == pytest.approx(2.0 * decay(0.5))  # half the time: by time
    fraction[0] = 1.0
    assert lr_after(optimizer, scheduler, 1) == pytest.approx(0.0, abs=1e-12)  # the budget is spent


def test_schedule_refuses_a_schedule_it_cannot_follow():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="lr_scheduler_type='polynomial' cannot follow a time budget"):
        budgeted_lr_schedule(optimizer, "polynomial", 0, 10, lambda: 0.0)


def test_budget_stops_saves_and_evaluates_once_the_time_is_spent(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), eval_strategy="steps", save_strategy="steps", report_to=[])
    state, control = TrainerState(global_step=7), TrainerControl()
    budget = WallClockBudget(max_train_minutes=1.0)
    budget.on_train_begin(args, state, control)
    budget.on_step_end(args, state, control)
    assert not (control.should_training_stop or control.should_save or control.should_evaluate)

    resumed = WallClockBudget(max_train_minutes=1.0, elapsed_seconds=59.0)  # as restored from a checkpoint
    assert 59.0 <= resumed.elapsed() < 60.0 and resumed.fraction() == pytest.approx(59 / 60, abs=0.01)
    spent = WallClockBudget(max_train_minutes=1.0, elapsed_seconds=60.0)
    spent.on_step_end(args, state, control)
    assert control.should_training_stop and control.should_save and control.should_evaluate
    assert spent.state()["args"] == {"max_train_minutes": 1.0}
    assert spent.state()["attributes"]["elapsed_seconds"] >= 60.0


class SteppedClock:
    """A `time` module whose `monotonic()` reads `now`, moved by the test."""

    def __init__(self):
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_stop_and_schedule_go_by_the_reading_of_the_last_synchronize(monkeypatch, tmp_path):
    """Between two readings every process decides with the same time, whatever its own clock says."""
    import hf_attention.budget

    clock = SteppedClock()
    monkeypatch.setattr(hf_attention.budget, "time", clock)
    args = TrainingArguments(output_dir=str(tmp_path), eval_strategy="no", save_strategy="steps", report_to=[])
    state, control = TrainerState(global_step=3), TrainerControl()
    budget = WallClockBudget(max_train_minutes=1.0, elapsed_seconds=15.0)  # resumed: a quarter spent
    assert budget.fraction() == 0.25 and not budget.spent()  # before any reading: the checkpoint's time
    budget.on_train_begin(args, state, control)  # the clock starts
    clock.now += 15.0
    budget.on_pre_optimizer_step(args, state, control)  # read at each optimizer step
    assert budget.fraction() == pytest.approx(0.5)
    clock.now += 60.0  # the budget runs out on this process's clock only
    assert budget.fraction() == pytest.approx(0.5)
    budget.on_step_end(args, state, control)
    assert not control.should_training_stop
    assert budget.synchronize() == pytest.approx(90.0)  # one process: its own clock
    assert budget.fraction() == 1.0 and budget.spent()
    budget.on_step_end(args, state, control)
    assert control.should_training_stop and control.should_save and not control.should_evaluate
