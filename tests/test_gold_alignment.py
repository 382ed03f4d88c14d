"""hf_attention.gold_alignment: argmax hits against a gold alignment, per head and head-averaged, and bad input."""

from types import SimpleNamespace

import pytest
import torch

from hf_attention.data import reversal_pairs
from hf_attention.gold_alignment import (
    alignment_accuracy,
    alignment_by_length,
    alignment_hits,
    gold_alignment_hits,
    reversal_gold_alignment,
)
from hf_attention.length_buckets import make_buckets, word_lengths
from hf_attention.tokenization import train_tokenizer


def test_alignment_hits_against_hand_counts():
    # Argmax per target row: 3, 1, 0.
    weights = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.1, 0.6, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1]])
    gold = torch.tensor([3, 2, -1])  # the last target token has no gold position
    hits, scored = alignment_hits(weights, gold)
    assert (hits.item(), scored.item()) == (1, 2)
    assert alignment_accuracy(weights, gold) == 0.5

    # [batch=2, heads=2, tgt_len=3, src_len=4]: head 1 of the second sentence hits everything, the rest as above.
    batched = weights.expand(2, 2, 3, 4).clone()
    batched[1, 1] = torch.eye(4)[[3, 2, 0]]
    hits, scored = alignment_hits(batched, gold.expand(2, 1, 3))
    assert hits.tolist() == [[1, 1], [1, 2]] and scored.tolist() == [[2, 2], [2, 2]]
    assert alignment_accuracy(batched, gold) == pytest.approx(5 / 8)

    with pytest.raises(ValueError, match="gold positions up to 4 for 4 source positions"):
        alignment_hits(weights, torch.tensor([4, 0, 0]))
    with pytest.raises(ValueError, match="tgt_len"):
        alignment_hits(weights, torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="no target token has a gold position"):
        alignment_accuracy(weights, torch.tensor([-1, -1, -1]))


def test_reversal_gold_alignment():
    assert reversal_gold_alignment(4) == [3, 2, 1, 0]
    assert reversal_gold_alignment(1) == [0]


@pytest.fixture(scope="module")
def letter_tokenizer():
    pairs = reversal_pairs(300)
    return train_tokenizer([text for pair in pairs for text in pair], vocab_size=60, model_max_length=64)


class ScriptedAttention:
    """Stands in for a model: cross attention with head 0 on the gold (reversal) source position and head 1 mostly
    on the diagonal, so that the hits can be counted by hand."""

    config = SimpleNamespace(attention_type="bahdanau")
    device = torch.device("cpu")

    def eval(self):
        return self

    def __call__(self, input_ids, attention_mask, labels, output_attentions):
        batch, src_len = input_ids.shape
        tgt_len = labels.shape[1]
        weights = torch.zeros(batch, 2, tgt_len, src_len)
        for row in range(batch):
            letters = int(attention_mask[row].sum()) - 1
            for i in range(min(letters, tgt_len)):
                weights[row, 0, i, letters - 1 - i] = 1.0
                weights[row, 1, i, letters - 1 - i] += 0.4
                weights[row, 1, i, i] += 0.6
        return SimpleNamespace(cross_attentions=(weights,))


def test_gold_alignment_hits_counts_each_head_and_the_average(letter_tokenizer):
    sources = ["a b c d e", "f g h i", "j k l"]  # out of length order: the batches are sorted, then restored
    targets = [" ".join(reversed(source.split())) for source in sources]
    hits = gold_alignment_hits(ScriptedAttention(), letter_tokenizer, sources, targets, reversal_gold_alignment, 2)
    # Head 1's argmax is the diagonal, which meets the anti-diagonal only in the middle of odd lengths.
    assert hits["heads"].tolist() == [[5, 1], [4, 0], [3, 1]]
    assert hits["average"].tolist() == [5, 4, 3]  # 0.5 + 0.2 on the gold position against 0.3
    assert hits["scored"].tolist() == [5, 4, 3]  # the letters; </s> is not scored

    accuracy = alignment_by_length(hits, word_lengths(sources), make_buckets([1, 4, 5]))
    assert accuracy["overall"]["average_of_heads"] == 1.0
    assert accuracy["overall"]["per_head"] == pytest.approx([1.0, 2 / 12])
    assert [(row["bucket"], row["count"], row["per_head"][1]) for row in accuracy["by_length"]] == [
        ("1-3", 1, pytest.approx(1 / 3)),
        ("4", 1, 0.0),
        ("5+", 1, pytest.approx(1 / 5)),
    ]

    with pytest.raises(ValueError, match="one token per word: 'ab c'"):
        gold_alignment_hits(ScriptedAttention(), letter_tokenizer, ["ab c"], ["c ab"], reversal_gold_alignment)
    fixed_context = ScriptedAttention()
    fixed_context.config = SimpleNamespace(attention_type="none")
    with pytest.raises(ValueError, match="attention_type='none' has no attention weights"):
        gold_alignment_hits(fixed_context, letter_tokenizer, sources, targets, reversal_gold_alignment)
