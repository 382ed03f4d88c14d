"""Training a translation model with the Hugging Face `Seq2SeqTrainer`: the code behind `scripts/train.py`.

`run_training` does the whole job: corpus, tokenizer and model from `loading`, training with validation BLEU (beam
search) choosing the best checkpoint, the test split scored by `evaluation`, and a Hub-ready folder: config with
`auto_map`, weights, the model's code files, tokenizer, generation config, metrics JSON, test translations and
attention heatmaps. The Accelerate loop (`training_accelerate`) shares everything but the loop itself.
"""

import contextlib
import copy
import logging
from pathlib import Path

import transformers
import transformers.trainer
from torch.utils.data import DataLoader
from transformers import (
    DataCollatorForSeq2Seq,
    EarlyStoppingCallback,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    set_seed,
)
from transformers.trainer_utils import HubStrategy

from .arguments import (
    DataArguments,
    ModelArguments,
    TranslationTrainingArguments,
    check_report_to,
    resolve_cpu_precision,
)
from .batching import ShuffledLengthGroupedSampler, build_token_batch_dataloader, pair_lengths
from .beam_search import beam_search_dropping_finished
from .budget import WallClockBudget, budgeted_lr_schedule
from .checkpoint_loading import load_checkpoint
from .checkpoints import resolve_resume_checkpoint
from .evaluation import build_compute_metrics, draw_learning_curves, evaluate_test_split
from .hub import UPLOAD_PATTERNS, build_model_card
from .loading import load_data_and_model
from .metrics import load_translation_metric
from .run_record import write_run_record

logger = logging.getLogger(__name__)


# Never uploaded by the Trainer's pushes: `training_args.bin` pickles the arguments, Hub token included; optimizer,
# scheduler, scaler and RNG states are for resuming on this machine. The weights are safetensors.
PICKLE_PATTERNS = ["*.bin", "*.pkl", "*.pickle", "*.pt", "*.pth"]
# What a push of the output folder may send: what `hf_attention.hub` shares, and the model card.
TRAINER_UPLOAD_PATTERNS = [*UPLOAD_PATTERNS, "README.md"]


class _ShareableUploads:
    """The Trainer's `HfApi`, whose `upload_folder` sends only the shareable files of a folder (no pickle)."""

    def __init__(self, api):
        self._api = api

    def __getattr__(self, name):
        return getattr(self._api, name)

    def upload_folder(self, *, allow_patterns=None, ignore_patterns=None, **kwargs):
        if isinstance(ignore_patterns, str):
            ignore_patterns = [ignore_patterns]
        return self._api.upload_folder(
            allow_patterns=allow_patterns or TRAINER_UPLOAD_PATTERNS,
            ignore_patterns=[*(ignore_patterns or []), *PICKLE_PATTERNS],
            **kwargs,
        )


@contextlib.contextmanager
def _shareable_trainer_uploads():
    """Within: the uploads `Trainer.push_to_hub` / `_push_from_checkpoint` make go through `_ShareableUploads`.

    Both call `transformers.trainer.hf_api()` with fixed `ignore_patterns` and no other hook; this swaps that
    function for the duration of the call.
    """
    shared_api = transformers.trainer.hf_api
    transformers.trainer.hf_api = lambda: _ShareableUploads(shared_api())
    try:
        yield
    finally:
        transformers.trainer.hf_api = shared_api


def check_hub_strategy(training_args: Seq2SeqTrainingArguments) -> None:
    """Refuse the hub strategies that upload whole checkpoint folders: to be resumable they must carry their
    pickles, and `training_args.bin` holds the Hub token."""
    strategy = HubStrategy(training_args.hub_strategy)
    if training_args.push_to_hub and strategy in (HubStrategy.CHECKPOINT, HubStrategy.ALL_CHECKPOINTS):
        raise ValueError(
            f"--hub_strategy {strategy.value!r} uploads resumable checkpoints, whose pickles hold the Hub token; "
            f"use {HubStrategy.EVERY_SAVE.value!r} or {HubStrategy.END.value!r}"
        )


class TranslationTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` whose `group_by_length` training batches come in random order (see the sampler), whose
    pushes upload this package's model card and never a pickle, and whose evaluation leaves the model's generation
    config as it was."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        check_hub_strategy(self.args)

    def push_to_hub(self, *args, **kwargs):
        with _shareable_trainer_uploads():
            return super().push_to_hub(*args, **kwargs)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        with _shareable_trainer_uploads():
            super()._push_from_checkpoint(checkpoint_folder)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        # Seq2SeqTrainer writes generate's global defaults (max_length=20, ...) into the model's generation config,
        # which every later checkpoint would then save: keep the config that was set.
        generation_config = copy.deepcopy(self.model.generation_config)
        try:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)
        finally:
            generation_config._from_model_config = self.model.generation_config._from_model_config
            self.model.generation_config = generation_config

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", **gen_kwargs):
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix, **self._generation_kwargs(gen_kwargs))

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test", **gen_kwargs):
        return super().predict(test_dataset, ignore_keys, metric_key_prefix, **self._generation_kwargs(gen_kwargs))

    def _generation_kwargs(self, gen_kwargs: dict) -> dict:
        """`gen_kwargs` with beam search dropping finished sentences (the same translations, sooner), bounded by the
        generation config's `max_new_tokens` unless they bound it themselves: else the Trainer adds
        `generation_max_length` as `max_length`, and generate warns that both are set."""
        gen_kwargs = {"custom_generate": beam_search_dropping_finished, **gen_kwargs}
        limit = self.model.generation_config.max_new_tokens
        if limit is None or gen_kwargs.get("max_length") is not None or gen_kwargs.get("max_new_tokens") is not None:
            return gen_kwargs
        return {**gen_kwargs, "max_new_tokens": limit}

    def create_model_card(self, **kwargs) -> None:
        """Write `README.md`: `hf_attention.hub.build_model_card` from the output folder's files (called by
        `push_to_hub` once the test split is scored), instead of the Trainer's generic card."""
        if not self.is_world_process_zero():
            return
        if not (Path(self.args.output_dir) / "test_results.json").is_file():
            # `save_model` pushes too (hub_strategy every_save), before the test split is scored: no card yet.
            logger.info("model card: written with the final push, once the test split is scored")
            return
        repo_id = self.hub_model_id or self.args.hub_model_id
        card = build_model_card(self.args.output_dir, repo_id=repo_id, revision=self.args.hub_revision or "main")
        card.save(Path(self.args.output_dir) / "README.md")

    def get_train_dataloader(self) -> DataLoader:
        """With `max_tokens_per_batch`, batches by tokens (`TokenBudgetBatchSampler`); else the Trainer's own."""
        if self.args.max_tokens_per_batch is None:
            return super().get_train_dataloader()
        dataset = self._remove_unused_columns(self.train_dataset, description="training")
        loader = build_token_batch_dataloader(dataset, self.data_collator, self.args, self.args.world_size)
        return self.accelerator.prepare(loader)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """With `max_train_minutes`, a schedule that ends when the time budget does (`budgeted_lr_schedule`)."""
        budget = self._wall_clock_budget()
        if self.lr_scheduler is None and budget is not None:
            self.lr_scheduler = budgeted_lr_schedule(
                optimizer if optimizer is not None else self.optimizer,
                str(self.args.lr_scheduler_type.value),
                self.args.get_warmup_steps(num_training_steps),
                num_training_steps,
                # Looked up at every step: resuming replaces the callback with one restored from the checkpoint.
                lambda: self._wall_clock_budget().fraction(),
            )
            self._created_lr_scheduler = True
        return super().create_scheduler(num_training_steps, optimizer)

    def _wall_clock_budget(self) -> WallClockBudget | None:
        return next((cb for cb in self.callback_handler.callbacks if isinstance(cb, WallClockBudget)), None)

    def _get_train_sampler(self, train_dataset=None):
        train_dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or "labels" not in train_dataset.column_names:
            return super()._get_train_sampler(train_dataset)
        lengths = pair_lengths(train_dataset)
        # Group by the global batch: Accelerate deals each process its share of every global batch, so n processes
        # see the batches one process with the global batch size would.
        batch_size = self.args.train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        return ShuffledLengthGroupedSampler(lengths, batch_size)


def run_training(
    model_args: ModelArguments, data_args: DataArguments, training_args: TranslationTrainingArguments
) -> dict[str, float]:
    """Train, evaluate on the test split, save everything to `training_args.output_dir`; returns the test metrics."""
    check_hub_strategy(training_args)
    resolve_cpu_precision(training_args)
    training_args.resume_from_checkpoint = resolve_resume_checkpoint(
        training_args.resume_from_checkpoint, training_args.output_dir
    )
    set_seed(training_args.seed)
    check_report_to(training_args)
    corpus, tokenized, tokenizer, model = load_data_and_model(model_args, data_args, training_args)

    callbacks = []
    if data_args.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience))
    if training_args.max_train_minutes is not None:
        callbacks.append(WallClockBudget(training_args.max_train_minutes))
    trainer = TranslationTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        compute_metrics=build_compute_metrics(
            tokenizer, load_translation_metric(), decoder_start_token_id=model.config.decoder_start_token_id
        ),
        callbacks=callbacks,
    )
    if trainer.is_world_process_zero():
        write_run_record(
            training_args.output_dir, model_args, data_args, training_args, corpus,
            training_args.world_size, training_args.device,
        )  # fmt: skip
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    metrics = {}
    if trainer.is_world_process_zero():
        draw_learning_curves(trainer.state.log_history, training_args.output_dir)
        # The saved checkpoint, as users load it: the Trainer's own model runs under its mixed-precision wrapper, which
        # under bf16 changed about one test translation in six of the German->English models.
        saved = load_checkpoint(training_args.output_dir, device=training_args.device).model
        metrics = evaluate_test_split(
            saved,
            tokenizer,
            corpus["test"],
            data_args,
            training_args.output_dir,
            training_args.eval_batch_size,
        )
        trainer.log_metrics("test", metrics)
    if training_args.push_to_hub:
        # Every process: `push_to_hub` saves the model first; process zero writes the card and uploads.
        trainer.push_to_hub(commit_message=f"Test BLEU {metrics.get('test_bleu', 0):.2f}")
    return metrics


__all__ = ["TranslationTrainer", "check_hub_strategy", "run_training"]
