"""Training to a wall-clock budget: a callback that stops the Trainer in time (the Accelerate loop uses the same
object), and a learning-rate schedule that ends when the budget does, so that a preset's time is a promise on any
machine (a faster one trains more steps, never longer)."""

import logging
import math
import time

import torch
from accelerate import PartialState
from accelerate.utils import broadcast
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

logger = logging.getLogger(__name__)

BUDGET_SCHEDULES = ("linear", "cosine", "constant", "constant_with_warmup")


class WallClockBudget(TrainerCallback, ExportableState):
    """Stop training at the first step that ends after `max_train_minutes`, saving and evaluating that step.

    The time counts from the start of training and includes the evaluations and saves in between (they are part of
    what the budget promises). Every entry of the Trainer's `log_history` gets the minutes spent so far
    (`train_minutes`), for learning curves against wall-clock time. The time already spent is saved with every
    checkpoint (`state`), so a resumed run gets only what is left.

    The stop and the schedule go by the main process's clock, read once per optimizer step (`synchronize`) and
    broadcast to the other processes: each process's own clock would stop them at different steps (one waiting
    forever in the next step's gradient exchange) and give them different learning rates.
    """

    def __init__(self, max_train_minutes: float, elapsed_seconds: float = 0.0):
        self.max_train_minutes = max_train_minutes
        self.elapsed_seconds = elapsed_seconds
        self._clock_start = None
        self._agreed_seconds = None

    @property
    def budget_seconds(self) -> float:
        return 60.0 * self.max_train_minutes

    def elapsed(self) -> float:
        """Seconds of training so far, earlier runs of a resumed training included."""
        if self._clock_start is None:
            self._clock_start = time.monotonic() - self.elapsed_seconds
        return time.monotonic() - self._clock_start

    def synchronize(self) -> float:
        """Read the main process's clock on every process: `fraction` and `spent` go by this reading until the next.

        A collective call when several processes train: every process calls it at the same point of each step.
        """
        seconds = self.elapsed()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            reading = torch.tensor([seconds], dtype=torch.float64, device=PartialState().device)
            seconds = float(broadcast(reading, from_process=0).item())
        self._agreed_seconds = seconds
        return seconds

    def _reading(self) -> float:
        # Before the first `synchronize`: the time a resumed run starts with, the same on every process.
        return self.elapsed_seconds if self._agreed_seconds is None else self._agreed_seconds

    def fraction(self) -> float:
        """The part of the budget spent at the last `synchronize`, in [0, 1]."""
        return min(1.0, self._reading() / self.budget_seconds)

    def spent(self) -> bool:
        """Whether the budget was spent at the last `synchronize`."""
        return self._reading() >= self.budget_seconds

    def on_train_begin(self, args, state, control, **kwargs):
        self.elapsed()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        # Just before the scheduler's step: the learning rate follows the time of this step, and at the step that
        # spends the budget it reaches the end of the schedule.
        self.synchronize()

    def on_step_end(self, args, state, control, **kwargs):
        if not self.spent() or control.should_training_stop:
            return
        logger.info(
            "max_train_minutes=%g reached at step %d: stopping, with a final save and evaluation",
            self.max_train_minutes,
            state.global_step,
        )
        control.should_training_stop = True
        control.should_save = args.save_strategy != "no"
        control.should_evaluate = args.eval_strategy != "no"

    def on_log(self, args, state, control, logs=None, **kwargs):
        # The Trainer has just appended this entry to log_history: stamping it there lets learning curves use minutes.
        if state.log_history:
            state.log_history[-1]["train_minutes"] = round(self.elapsed() / 60.0, 3)

    def state(self) -> dict:
        return {
            "args": {"max_train_minutes": self.max_train_minutes},
            "attributes": {"elapsed_seconds": self.elapsed()},
        }


def budgeted_lr_schedule(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    num_warmup_steps: int,
    num_training_steps: int,
    budget_fraction,
) -> torch.optim.lr_scheduler.LambdaLR:
    """`schedule` ("linear", "cosine", "constant" or "constant_with_warmup") with linear warmup over
    `num_warmup_steps`, whose progress is the larger of the steps done and the time spent: it decays to zero at
    `num_training_steps` or when `budget_fraction()` (the part of the time budget spent) reaches 1, whichever comes
    first."""
    if schedule not in BUDGET_SCHEDULES:
        raise ValueError(
            f"lr_scheduler_type={schedule!r} cannot follow a time budget (max_train_minutes); use one of "
            f"{', '.join(BUDGET_SCHEDULES)}."
        )

    def factor(step: int) -> float:
        if step < num_warmup_steps:
            return step / num_warmup_steps
        if schedule.startswith("constant"):
            return 1.0
        progress = max(step / max(1, num_training_steps), budget_fraction())
        progress = min(1.0, progress)
        return 1.0 - progress if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


__all__ = ["BUDGET_SCHEDULES", "WallClockBudget", "budgeted_lr_schedule"]
