"""hf_attention.batching: length-grouped batches in random order, validation batches longest first."""

import torch
from datasets import Dataset
from transformers.trainer_pt_utils import LengthGroupedSampler

from hf_attention.batching import ShuffledLengthGroupedSampler, build_eval_dataloader


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
