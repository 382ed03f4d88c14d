"""hf_attention.batching: length-grouped batches in random order, by sentences or by tokens, validation batches
longest first."""

import pytest
import torch
from accelerate.data_loader import BatchSamplerShard
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq
from transformers.trainer_pt_utils import LengthGroupedSampler

from hf_attention.arguments import TranslationTrainingArguments
from hf_attention.batching import (
    ShuffledLengthGroupedSampler,
    TokenBudgetBatchSampler,
    build_eval_dataloader,
    build_train_dataloader,
)
from hf_attention.tokenization import train_tokenizer


def test_length_grouped_batches_come_in_random_order():
    lengths = torch.randint(1, 60, (1000,), generator=torch.Generator().manual_seed(0)).tolist()

    def batch_maxima(order):
        assert sorted(order) == list(range(1000))
        return [max(lengths[index] for index in order[start : start + 10]) for start in range(0, 1000, 10)]

    def padding(order):
        return sum(10 * top for top in batch_maxima(order)) - sum(lengths)

    def rises(order):
        maxima = batch_maxima(order)
        return sum(later > earlier for earlier, later in zip(maxima, maxima[1:], strict=False))

    torch.manual_seed(0)
    shuffled = list(ShuffledLengthGroupedSampler(lengths, 10))
    upstream = list(LengthGroupedSampler(10, lengths=lengths))
    random_order = torch.randperm(1000).tolist()
    assert batch_maxima(shuffled)[0] == max(lengths)  # the longest batch first: out-of-memory shows at once
    assert padding(shuffled) < padding(random_order) / 5 and padding(upstream) < padding(random_order) / 5
    # Upstream sweeps long -> short within each megabatch of 50 batches; these batches go up about half the time.
    assert rises(upstream) <= 5 and rises(shuffled) > 30


def test_validation_batches_come_longest_first():
    dataset = Dataset.from_dict({"input_ids": [[5] * n for n in (2, 7, 4, 7, 1)], "labels": [[6]] * 5})
    batches = list(build_eval_dataloader(dataset, lambda rows: [len(row["input_ids"]) for row in rows], 2))
    assert batches == [[7, 7], [4, 2], [1]]


def test_token_batches_respect_the_budget_and_cover_every_pair_once():
    lengths = torch.randint(1, 60, (1000,), generator=torch.Generator().manual_seed(1)).tolist()
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=400, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(index for batch in batches for index in batch) == list(range(1000))
    assert all(len(batch) * max(lengths[index] for index in batch) <= 400 for batch in batches)
    # Greedy packing: a batch stops only where the next pair would break the budget, so few batches are far below.
    used = [len(batch) * max(lengths[index] for index in batch) for batch in batches]
    assert sum(used) / len(used) > 0.85 * 400
    assert max(lengths[index] for index in batches[0]) == max(lengths)  # the longest batch first
    maxima = [max(lengths[index] for index in batch) for batch in batches]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)  # visited in random order

    assert list(TokenBudgetBatchSampler(lengths, 400, seed=3)) == batches  # a function of (seed, epoch)
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_token_batches_are_dealt_to_processes_as_shares_of_one_global_batch():
    """n processes with budget b each see, step by step, the batches of one process with budget n * b."""
    lengths = torch.randint(1, 40, (301,), generator=torch.Generator().manual_seed(2)).tolist()
    single = list(TokenBudgetBatchSampler(lengths, max_tokens=600, num_processes=1, seed=5))
    shared = TokenBudgetBatchSampler(lengths, max_tokens=300, num_processes=2, seed=5)
    per_process = [list(BatchSamplerShard(shared, num_processes=2, process_index=rank)) for rank in range(2)]
    assert len(per_process[0]) == len(per_process[1]) == len(single)
    for step, batch in enumerate(single):
        shares = [per_process[rank][step] for rank in range(2)]
        assert all(shares) and sorted(shares[0] + shares[1]) == sorted(batch)
        longest = max(lengths[index] for index in batch)
        assert all(len(share) * longest <= 300 + longest for share in shares)


def test_token_budget_below_the_longest_pair_is_refused():
    with pytest.raises(ValueError, match=r"max_tokens_per_batch=10 is less than the longest training pair \(12"):
        TokenBudgetBatchSampler([3, 12, 5], max_tokens=10)
    with pytest.raises(ValueError, match="3 training pairs cannot be shared among 4 processes"):
        TokenBudgetBatchSampler([3, 4, 5], max_tokens=100, num_processes=4)


def test_the_accelerate_loader_batches_by_tokens_when_asked(tmp_path):
    generator = torch.Generator().manual_seed(4)
    rows = [torch.randint(3, 50, (int(n),), generator=generator).tolist() for n in torch.randint(2, 20, (200,))]
    dataset = Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows], "labels": rows})
    arguments = TranslationTrainingArguments(output_dir=str(tmp_path), max_tokens_per_batch=120, report_to=[])
    collator = DataCollatorForSeq2Seq(train_tokenizer(["a b c d"], vocab_size=40))
    loader = build_train_dataloader(dataset, collator, arguments, num_processes=1)
    batches = list(loader)
    assert sum(len(batch["input_ids"]) for batch in batches) == 200
    assert all(batch["input_ids"].numel() <= 120 and batch["labels"].numel() <= 120 for batch in batches)
    assert len({len(batch["input_ids"]) for batch in batches}) > 1  # the pair count follows the lengths
