"""Batching: length-grouped training batches in random order, by sentences or by tokens, and the data loaders of the
Accelerate loop (the Trainer builds its own from the same samplers)."""

import torch
from torch.utils.data import DataLoader, Sampler
from transformers import Seq2SeqTrainingArguments
from transformers.trainer_pt_utils import get_length_grouped_indices


class ShuffledLengthGroupedSampler(Sampler):
    """Batches of similar length, visited in random order.

    transformers' `LengthGroupedSampler` sorts each megabatch (50 batches) by decreasing length and visits its
    batches in that order, so training sweeps from long to short sentences 50 batches at a time; on the reversal
    preset a model trained that way, having last seen short sequences, learns to stop early. This sampler keeps the
    same grouping (`get_length_grouped_indices`) and shuffles the batches; the longest stays first so that running
    out of memory happens at once.

    With a `seed`, the order of an epoch depends only on `(seed, epoch)` (see `set_epoch`): every process computes
    the same order without synchronising, and a resumed run sees the batches an uninterrupted one would. Without
    one it draws from `generator` (the global RNG when None), as transformers' samplers do.
    """

    def __init__(
        self,
        lengths: list[int],
        batch_size: int,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ):
        self.lengths, self.batch_size, self.generator, self.seed = lengths, batch_size, generator, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = self.generator
        if self.seed is not None:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
        indices = get_length_grouped_indices(self.lengths, self.batch_size, generator=generator)
        batches = [indices[start : start + self.batch_size] for start in range(0, len(indices), self.batch_size)]
        order = [0] + (torch.randperm(len(batches) - 1, generator=generator) + 1).tolist()
        return iter([index for batch in order for index in batches[batch]])


class TokenBudgetBatchSampler(Sampler):
    """Batches of similar length holding at most `max_tokens` padded tokens each (sentences x the longest), as NMT
    toolkits batch: short sentences come many to a batch, long ones few, and every step sees about as many tokens.

    An epoch sorts the pairs by decreasing length (ties in random order), cuts the sorted list greedily into global
    batches of at most `max_tokens * num_processes` tokens, and visits them in random order, the longest first
    (running out of memory happens at once). Each global batch is yielded as `num_processes` interleaved shares
    (`batch[k::num_processes]`): Accelerate's `BatchSamplerShard` deals share k of every global batch to process k,
    so n processes see the batches that one process with n times the budget sees (unless the epoch's last batch has
    fewer than n pairs: it then joins the one before). The order depends only on `(seed, epoch)`, as in
    `ShuffledLengthGroupedSampler`.
    """

    def __init__(self, lengths: list[int], max_tokens: int, num_processes: int = 1, seed: int = 0):
        if len(lengths) < num_processes:
            raise ValueError(f"{len(lengths)} training pairs cannot be shared among {num_processes} processes.")
        if max(lengths) > max_tokens:
            raise ValueError(
                f"max_tokens_per_batch={max_tokens} is less than the longest training pair ({max(lengths)} tokens); "
                f"use at least {max(lengths)} or lower max_source_length / max_target_length."
            )
        self.lengths, self.max_tokens, self.num_processes, self.seed = lengths, max_tokens, num_processes, seed
        self.epoch = 0
        self._batches = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        """This epoch's global batches, in the order they are visited."""
        if self.epoch not in self._batches:
            self._batches = {self.epoch: self._draw_batches()}
        return self._batches[self.epoch]

    def _draw_batches(self) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        lengths = torch.tensor(self.lengths)
        shuffled = torch.randperm(len(self.lengths), generator=generator)
        # Longest first: the batches holding the longest pairs are the fullest, and a short remainder comes last.
        order = shuffled[torch.sort(lengths[shuffled], descending=True, stable=True).indices].tolist()
        budget = self.max_tokens * self.num_processes
        batches, batch, longest = [], [], 0
        for index in order:
            if batch and (len(batch) + 1) * max(longest, self.lengths[index]) > budget:
                batches.append(batch)
                batch, longest = [], 0
            batch.append(index)
            longest = max(longest, self.lengths[index])
        # Every pair fits the per-process budget, so every batch but the last holds at least num_processes pairs;
        # a last one with fewer joins the one before rather than being dropped.
        if len(batches) > 0 and len(batch) < self.num_processes:
            batches[-1].extend(batch)
        else:
            batches.append(batch)
        rest = [batches[index + 1] for index in torch.randperm(len(batches) - 1, generator=generator).tolist()]
        return [batches[0]] + rest

    def __len__(self) -> int:
        return len(self.global_batches()) * self.num_processes

    def __iter__(self):
        for batch in self.global_batches():
            for share in range(self.num_processes):
                yield batch[share :: self.num_processes]


def pair_lengths(dataset) -> list[int]:
    """The length to group a tokenized pair by: the longer of source and target, since each side is padded."""
    return [
        max(len(source), len(target)) for source, target in zip(dataset["input_ids"], dataset["labels"], strict=True)
    ]


def data_seed(training_args: Seq2SeqTrainingArguments) -> int:
    """The seed of the training batches' order: `data_seed`, else `seed` (as the Trainer reads them)."""
    return training_args.data_seed if training_args.data_seed is not None else training_args.seed


def build_train_dataloader(train_dataset, collator, training_args, num_processes: int) -> DataLoader:
    """Batches of `max_tokens_per_batch` tokens (`TokenBudgetBatchSampler`) or of `per_device_train_batch_size`
    pairs, their order a function of the seed and the epoch only."""
    seed = data_seed(training_args)
    if training_args.max_tokens_per_batch is not None:
        return build_token_batch_dataloader(train_dataset, collator, training_args, num_processes)
    if training_args.train_sampling_strategy == "group_by_length":
        # Grouped by the global batch, which `prepare` deals out to the processes one per-process batch each.
        global_batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
        sampler = ShuffledLengthGroupedSampler(pair_lengths(train_dataset), global_batch * num_processes, seed=seed)
        shuffle = None
    else:
        sampler, shuffle = None, True  # Accelerate's seedable sampler (see `training_accelerate.build_accelerator`)
    return DataLoader(
        train_dataset,
        batch_size=training_args.per_device_train_batch_size,
        sampler=sampler,
        shuffle=shuffle,
        collate_fn=collator,
        num_workers=training_args.dataloader_num_workers,
        # Its own generator: creating an iterator then draws nothing from the global RNG, whose state (dropout)
        # is what `save_state` restores on resume.
        generator=torch.Generator().manual_seed(seed),
    )


def build_token_batch_dataloader(train_dataset, collator, training_args, num_processes: int) -> DataLoader:
    """Training batches of at most `max_tokens_per_batch` padded tokens per process (`TokenBudgetBatchSampler`), for
    both loops; `prepare` deals each process its share of every global batch."""
    sampler = TokenBudgetBatchSampler(
        pair_lengths(train_dataset), training_args.max_tokens_per_batch, num_processes, data_seed(training_args)
    )
    return DataLoader(
        train_dataset,
        batch_sampler=sampler,
        collate_fn=collator,
        num_workers=training_args.dataloader_num_workers,
    )


def build_eval_dataloader(eval_dataset, collator, batch_size: int) -> DataLoader:
    """Validation batches, longest sources first: little padding, and running out of memory happens at once."""
    order = sorted(range(len(eval_dataset)), key=lambda index: -len(eval_dataset[index]["input_ids"]))
    return DataLoader(eval_dataset.select(order), batch_size=batch_size, collate_fn=collator)


__all__ = [
    "ShuffledLengthGroupedSampler",
    "TokenBudgetBatchSampler",
    "build_eval_dataloader",
    "build_token_batch_dataloader",
    "build_train_dataloader",
    "data_seed",
    "pair_lengths",
]
