"""Training with a plain Accelerate loop: the code behind `scripts/train_accelerate.py`.

The arguments, presets, corpus, tokenizer and model (`arguments`, `loading`), batching, checkpoint folders and
evaluation are those the Trainer script (`training_trainer`) uses; the loop is Accelerate's own: `prepare`,
`accumulate`, `backward`, `clip_grad_norm_`, `gather_for_metrics`, `save_state` and `load_state`. It is written so
that the launch does not change the model: n processes with per-process batch B/n take the same steps as one process
with batch B (same batches, same token-averaged loss, same learning rate), and a run resumed from a checkpoint ends
exactly where an uninterrupted one does.

With `max_train_minutes` it trains to the same wall-clock budget as the Trainer (`budget.WallClockBudget`, the
main process's clock broadcast at each step so that every process stops at the same one; `budgeted_lr_schedule`,
which ends with the budget); the time spent is kept in each checkpoint's `training_progress.json`.

Trainer settings this loop does not implement are refused or named in a warning (`_check_supported`); it keeps the
last weights rather than the best ones.
"""

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, GradientAccumulationPlugin, set_seed, tqdm
from huggingface_hub import get_token
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainingArguments, get_scheduler

from .arguments import DataArguments, ModelArguments, check_report_to, resolve_cpu_precision
from .batching import build_eval_dataloader, build_train_dataloader, data_seed
from .budget import BUDGET_SCHEDULES, WallClockBudget, budgeted_lr_schedule
from .checkpoint_loading import load_checkpoint
from .checkpoints import TrainingProgress, remove_partial_checkpoints, save_checkpoint
from .evaluation import draw_learning_curves, evaluate_generation, evaluate_test_split
from .hub import check_repo_id, push_checkpoint
from .loading import load_data_and_model
from .metrics import load_translation_metric
from .run_record import SECRET_NAME, write_run_record

logger = get_logger(__name__)


def _check_supported(training_args: Seq2SeqTrainingArguments) -> None:
    for name in ("eval_strategy", "save_strategy"):
        value = getattr(training_args, name)
        value = getattr(value, "value", value)  # an IntervalStrategy
        if value not in ("no", "steps"):
            raise ValueError(f"--{name} {value}: the Accelerate loop counts optimizer steps; use 'steps' or 'no'")
    if training_args.push_to_hub:  # fail now, not after training
        if training_args.hub_model_id is None:
            raise ValueError("--push_to_hub needs --hub_model_id namespace/name")
        check_repo_id(training_args.hub_model_id)
        if (training_args.hub_token or get_token()) is None:
            raise ValueError("--push_to_hub: no Hugging Face token; set HF_TOKEN or run `hf auth login`")
    schedule = str(getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type))
    if training_args.max_train_minutes is not None and schedule not in BUDGET_SCHEDULES:
        raise ValueError(
            f"--lr_scheduler_type {schedule} cannot follow a time budget (--max_train_minutes); use one of "
            f"{', '.join(BUDGET_SCHEDULES)}"
        )
    if training_args.load_best_model_at_end:
        logger.warning("load_best_model_at_end is a Trainer feature: the Accelerate loop keeps the last weights")
    if training_args.use_cpu and torch.cuda.is_available():
        logger.warning("use_cpu is true (the presets set it for bf16 on CPUs): training on the CPU; --use_cpu false")


def _mixed_precision(training_args: Seq2SeqTrainingArguments) -> str:
    """`accelerate launch --mixed_precision X` (or its config file) wins over the preset's `bf16` / `fp16`."""
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if launcher != "no":
        return launcher
    return "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "no"


def build_accelerator(training_args: Seq2SeqTrainingArguments) -> Accelerator:
    """The `Accelerator` of a run; refuses a launch whose processes would each train alone."""
    check_report_to(training_args)
    accelerator = Accelerator(
        cpu=training_args.use_cpu,
        mixed_precision=_mixed_precision(training_args),
        # The loop gathers the token count of a whole accumulation window before its first backward, so windows
        # run across epoch ends; syncing at the end of the data loader would cut them short.
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=training_args.gradient_accumulation_steps, sync_with_dataloader=False
        ),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=data_seed(training_args)),
        log_with="tensorboard" if "tensorboard" in training_args.report_to else None,
        project_dir=training_args.output_dir,
    )
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:
        raise RuntimeError(
            f"launched as {launched} processes (WORLD_SIZE) but Accelerate runs {accelerator.num_processes} "
            f"({accelerator.distributed_type}): each process would train its own model. Without GPUs pass "
            "--use_cpu true, or launch with ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N"
        )
    logger.info(
        "distributed type %s, world size %d, device %s, mixed precision %s",
        accelerator.distributed_type,
        accelerator.num_processes,
        accelerator.device,
        accelerator.mixed_precision,
    )
    return accelerator


def build_optimizer(model: torch.nn.Module, training_args: Seq2SeqTrainingArguments) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings, not on biases and norm gains (as the Trainer does)."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": training_args.weight_decay},
        {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups,
        lr=training_args.learning_rate,
        betas=(training_args.adam_beta1, training_args.adam_beta2),
        eps=training_args.adam_epsilon,
    )


def batch_windows(accelerator: Accelerator, dataloader, window: int, skip: int = 0):
    """Yield `(epoch, batches)`: lists of `window` consecutive batches, epoch after epoch, after skipping `skip`
    batches from the start of the first epoch (resume).

    Args:
        dataloader: a prepared training data loader; `len(dataloader)` batches per epoch on this process.
    """
    epoch, skip = divmod(skip, len(dataloader))
    batches = []
    while True:
        # On the prepared loader: the one `skip_first_batches` wraps does not pass the epoch on to the sampler.
        dataloader.set_epoch(epoch)
        loader = accelerator.skip_first_batches(dataloader, skip) if skip else dataloader
        for batch in loader:
            batches.append(batch)
            if len(batches) == window:
                yield epoch, batches
                batches = []
        epoch, skip = epoch + 1, 0


def truncate_log_history(path: Path, first_step: int) -> int:
    """Drop the records of steps from `first_step` on from a `log_history.jsonl` (the ones a resumed run logs again);
    returns how many were dropped."""
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] < first_step]
    path.write_text("".join(f"{line}\n" for line in kept))
    return len(lines) - len(kept)


def _tracker_config(model_args, data_args, training_args: Seq2SeqTrainingArguments) -> dict:
    """The hyper-parameters of a run as TensorBoard's `add_hparams` accepts them, without any secret-looking field.

    The training arguments go through `TrainingArguments.to_sanitized_dict` (the Trainer's own hparams, tokens
    masked); the model and data arguments keep their scalar fields.
    """
    config = training_args.to_sanitized_dict()
    for arguments in (model_args, data_args):
        for name, value in dataclasses.asdict(arguments).items():
            if isinstance(value, bool | int | float | str):
                config[name] = value
    return {name: value for name, value in config.items() if not SECRET_NAME.search(name)}


def run_accelerate_training(
    model_args: ModelArguments, data_args: DataArguments, training_args: Seq2SeqTrainingArguments
) -> dict[str, float]:
    """Train with Accelerate on however many processes were launched, evaluate, save the final model and score the
    test split (main process); returns the final metrics (empty on the other processes)."""
    resolve_cpu_precision(training_args)
    accelerator = build_accelerator(training_args)
    _check_supported(training_args)
    resumed = training_args.resume_from_checkpoint is not None
    # Read (and checked) before anything else: a folder that cannot be resumed fails now.
    progress = TrainingProgress.load(training_args.resume_from_checkpoint) if resumed else TrainingProgress()
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    corpus, tokenized, tokenizer, model = load_data_and_model(model_args, data_args, training_args)

    collator = DataCollatorForSeq2Seq(tokenizer, model=model)
    # The model's inputs only (the Trainer drops the other columns itself).
    tokenized = tokenized.select_columns(["input_ids", "attention_mask", "labels"])
    train_dataloader = build_train_dataloader(tokenized["train"], collator, training_args, accelerator.num_processes)
    eval_dataloader = build_eval_dataloader(
        tokenized["validation"], collator, training_args.per_device_eval_batch_size
    )
    accumulation = training_args.gradient_accumulation_steps
    max_steps = training_args.max_steps
    if max_steps < 0:
        batches_per_process = math.ceil(len(train_dataloader) / accelerator.num_processes)
        max_steps = math.ceil(training_args.num_train_epochs * batches_per_process / accumulation)
    optimizer = build_optimizer(model, training_args)
    budget = None
    if training_args.max_train_minutes is not None:
        budget = WallClockBudget(training_args.max_train_minutes, elapsed_seconds=progress.elapsed_seconds or 0.0)
    # A prepared scheduler steps once per process at each optimizer step (Accelerate assumes per-process epochs),
    # so its schedule is written in process-steps.
    num_warmup_steps = training_args.get_warmup_steps(max_steps) * accelerator.num_processes
    num_training_steps = max_steps * accelerator.num_processes
    if budget is not None:
        schedule = str(getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type))
        scheduler = budgeted_lr_schedule(optimizer, schedule, num_warmup_steps, num_training_steps, budget.fraction)
    else:
        scheduler = get_scheduler(
            training_args.lr_scheduler_type,
            optimizer,
            num_warmup_steps=num_warmup_steps,
            num_training_steps=num_training_steps,
            scheduler_specific_kwargs=training_args.lr_scheduler_kwargs or None,
        )
    model, optimizer, train_dataloader, eval_dataloader, scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, scheduler
    )
    if accelerator.is_main_process:
        write_run_record(
            output_dir, model_args, data_args, training_args, corpus, accelerator.num_processes, accelerator.device
        )
    if resumed:
        accelerator.load_state(training_args.resume_from_checkpoint)
        logger.info("resumed from %s at step %d", training_args.resume_from_checkpoint, progress.completed_steps)
    # Steps before this one are in the logs already (a checkpoint is saved after its step's records), from here on
    # the run logs them again: drop them from the logs of an earlier run in the same folder.
    first_step = progress.completed_steps + 1 if resumed else 0
    if accelerator.is_main_process:
        remove_partial_checkpoints(output_dir)
        dropped = truncate_log_history(output_dir / "log_history.jsonl", first_step)
        if dropped:
            logger.info("log_history.jsonl: %d records from step %d on dropped (logged again)", dropped, first_step)
    accelerator.wait_for_everyone()
    metric = load_translation_metric()
    accelerator.init_trackers(
        "runs",
        config=_tracker_config(model_args, data_args, training_args),
        # TensorBoard hides the events of earlier runs from this step on (SummaryWriter's `purge_step`).
        init_kwargs={"tensorboard": {"purge_step": first_step}},
    )
    global_batch = training_args.per_device_train_batch_size * accumulation * accelerator.num_processes
    logger.info("%d optimizer steps of %d pairs (%d processes)", max_steps, global_batch, accelerator.num_processes)

    def log(record: dict) -> None:
        if progress.completed_steps < first_step:
            return  # resumed at the last step: its records were logged before the checkpoint
        if budget is not None:
            record = {**record, "train_minutes": round(budget.elapsed() / 60.0, 3)}  # as the Trainer's records
        accelerator.log(record, step=progress.completed_steps)
        if accelerator.is_main_process:
            with (output_dir / "log_history.jsonl").open("a") as history:
                history.write(json.dumps({"step": progress.completed_steps, **record}) + "\n")
            progress_bar.write(json.dumps({"step": progress.completed_steps, **record}))

    output_dir.mkdir(parents=True, exist_ok=True)
    progress_bar = tqdm(
        total=max_steps,
        initial=progress.completed_steps,
        disable=training_args.disable_tqdm,
        desc="training",
    )
    model.train()
    interval_loss, interval_tokens, total_tokens = torch.zeros((), device=accelerator.device), 0, 0
    start, paused_seconds = time.perf_counter(), 0.0
    eval_metrics = {}
    windows = batch_windows(accelerator, train_dataloader, accumulation, skip=progress.completed_steps * accumulation)
    if budget is not None:
        budget.synchronize()  # starts the clock; a run resumed from where its budget ran out trains no further
    out_of_time = budget is not None and budget.spent()
    while progress.completed_steps < max_steps and not out_of_time:
        epoch, window = next(windows)
        local_tokens = sum(int((batch["labels"] != -100).sum()) for batch in window)
        window_tokens = int(accelerator.gather(torch.tensor([local_tokens], device=accelerator.device)).sum())
        for batch in window:
            with accelerator.accumulate(model):
                labels = batch.pop("labels")
                logits = model(**batch).logits
                summed = F.cross_entropy(
                    logits.flatten(0, 1).float(),
                    labels.flatten(),
                    ignore_index=-100,
                    label_smoothing=training_args.label_smoothing_factor,
                    reduction="sum",
                )
                interval_loss += summed.detach()
                # The gradient wanted is that of the loss summed over the global batch's tokens, divided by their
                # number; DDP averages over processes and `backward` divides by the accumulation steps: undo both.
                accelerator.backward(summed * accelerator.num_processes * accumulation / max(window_tokens, 1))
                if accelerator.sync_gradients and training_args.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), training_args.max_grad_norm)
                if accelerator.sync_gradients and budget is not None:
                    # Before the scheduler's step: the learning rate follows this step's time, reaching the end of
                    # the schedule at the step that spends the budget.
                    budget.synchronize()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
        progress.completed_steps += 1
        progress_bar.update(1)
        interval_tokens += window_tokens
        total_tokens += window_tokens
        step = progress.completed_steps
        out_of_time = budget is not None and budget.spent()
        if out_of_time:
            logger.info("max_train_minutes=%g reached at step %d: stopping", budget.max_train_minutes, step)
        last = step == max_steps or out_of_time

        if step % training_args.logging_steps == 0 or last:
            loss = float(accelerator.reduce(interval_loss, reduction="sum")) / max(interval_tokens, 1)
            training_seconds = time.perf_counter() - start - paused_seconds
            log({"loss": loss, "learning_rate": scheduler.get_last_lr()[0], "epoch": epoch,
                 "target_tokens_per_s": total_tokens / training_seconds})  # fmt: skip
            interval_loss.zero_()
            interval_tokens = 0
        if training_args.eval_strategy == "steps" and (step % training_args.eval_steps == 0 or last):
            evaluation_start = time.perf_counter()
            eval_metrics = evaluate_generation(accelerator, model, eval_dataloader, tokenizer, metric)
            paused_seconds += time.perf_counter() - evaluation_start
            log(eval_metrics)
        # A run stopped by its budget is saved where it stopped, as the Trainer does.
        if training_args.save_strategy == "steps" and (step % training_args.save_steps == 0 or out_of_time):
            saving_start = time.perf_counter()
            checkpoint = save_checkpoint(
                accelerator, model, tokenizer, output_dir, step, training_args.save_total_limit
            )
            if budget is not None and accelerator.is_main_process:
                TrainingProgress(completed_steps=step, elapsed_seconds=budget.elapsed()).save(checkpoint)
            paused_seconds += time.perf_counter() - saving_start
    progress_bar.close()
    training_seconds = time.perf_counter() - start - paused_seconds
    if training_args.eval_strategy == "steps" and not eval_metrics:
        eval_metrics = evaluate_generation(accelerator, model, eval_dataloader, tokenizer, metric)
        log(eval_metrics)

    accelerator.wait_for_everyone()
    metrics = {}
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        metrics = {
            "world_size": accelerator.num_processes,
            "distributed_type": accelerator.distributed_type.value,
            "mixed_precision": accelerator.mixed_precision,
            "global_batch_size": global_batch,
            "steps": progress.completed_steps,
            "train_runtime": round(training_seconds, 2),  # without validation and checkpoints
            "train_target_tokens_per_s": round(total_tokens / training_seconds, 1) if total_tokens else 0.0,
            **eval_metrics,
        }
        with (output_dir / "train_results.json").open("w") as file:
            json.dump(metrics, file, indent=2)
        with (output_dir / "log_history.jsonl").open() as history:
            draw_learning_curves([json.loads(line) for line in history], output_dir)
        metrics |= evaluate_test_split(
            # The saved checkpoint, as users load it (not the model under the mixed-precision wrapper).
            load_checkpoint(output_dir, device=accelerator.device).model,
            tokenizer,
            corpus["test"],
            data_args,
            output_dir,
            training_args.per_device_eval_batch_size,
        )
        logger.info("final metrics: %s", metrics)
        if training_args.push_to_hub:
            commit = push_checkpoint(
                output_dir,
                training_args.hub_model_id,
                private=bool(training_args.hub_private_repo),
                revision=training_args.hub_revision,
                commit_message=f"Test BLEU {metrics['test_bleu']:.2f}",
                token=training_args.hub_token,
            )
            logger.info("pushed to %s", commit.commit_url)
    # Leave together: a process that destroys its process group while the main one still writes was seen to leave
    # the main one hanging in its own `destroy_process_group` (gloo).
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return metrics


__all__ = ["build_accelerator", "build_optimizer", "run_accelerate_training"]
