"""hf_attention.analysis: length buckets, per-bucket scores, alignment accuracy, plots, and their bad input."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import sacrebleu
import torch
import yaml

from hf_attention.analysis import (
    ComparisonArguments,
    LengthBucket,
    alignment_accuracy,
    alignment_by_length,
    alignment_hits,
    bucket_index,
    compare_attention_types,
    exact_match,
    gold_alignment_hits,
    group_by_length,
    make_buckets,
    markdown_table,
    parse_checkpoints,
    plot_by_length,
    reversal_gold_alignment,
    scores_by_length,
    word_lengths,
)
from hf_attention.data import load_translation_corpus, reversal_pairs
from hf_attention.metrics import load_translation_metric
from hf_attention.tokenization import train_tokenizer

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_buckets_from_their_lower_ends():
    buckets = make_buckets([1, 6, 11, 16])
    assert buckets == [LengthBucket(1, 5), LengthBucket(6, 10), LengthBucket(11, 15), LengthBucket(16, None)]
    assert [bucket.label for bucket in buckets] == ["1-5", "6-10", "11-15", "16+"]
    assert [bucket.label for bucket in make_buckets([2, 3])] == ["2", "3+"]
    assert [bucket_index(length, buckets) for length in (1, 5, 6, 10, 11, 15, 16, 400)] == [0, 0, 1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ([], "at least one lower end"),
        ([0, 5], r"edges \[0, 5\]: every edge must be an integer >= 1"),
        ([1, 6, 6], r"edges \[1, 6, 6\]: must be strictly increasing"),
        ([10, 5], "strictly increasing"),
    ],
)
def test_bad_bucket_edges_are_refused(edges, message):
    with pytest.raises(ValueError, match=message):
        make_buckets(edges)


def test_group_by_length_counts_and_refuses_thin_buckets():
    buckets = make_buckets([1, 6, 11, 16])
    lengths = [1, 5, 6, 10, 16, 40, 7, 12]
    assert group_by_length(lengths, buckets) == [[0, 1], [2, 3, 6], [7], [4, 5]]
    with pytest.raises(ValueError, match=r"buckets 11-15 hold fewer than 2 items \(counts 1-5: 2, 6-10: 3, 11-15: 1"):
        group_by_length(lengths, buckets, min_count=2)
    with pytest.raises(ValueError, match=r"buckets 11-15 are empty \(counts 1-5: 1, 6-10: 1, 11-15: 0, 16\+: 1\)"):
        group_by_length([1, 7, 20], buckets)  # an empty bucket
    with pytest.raises(ValueError, match="length 2 is in no bucket .* lower the first bucket edge to 2"):
        group_by_length([2, 5], make_buckets([3, 5]))
    assert word_lengths(["a b  c", " d ", ""]) == [3, 1, 0]


def test_exact_match():
    assert exact_match(["a b", "c", " d  e "], ["a b", "x", "d e"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        exact_match(["a", "b"], ["a"])


def test_scores_by_length_are_corpus_scores_of_each_bucket():
    references = ["the cat sat on the mat", "a dog", "it is raining today here", "one two three four five six"]
    hypotheses = ["the cat sat on the mat", "a cat", "it is raining here", "one two three four five six"]
    lengths = [6, 2, 5, 6]
    rows = scores_by_length(lengths, hypotheses, references, make_buckets([1, 6]), load_translation_metric())
    assert [(row["bucket"], row["count"]) for row in rows] == [("1-5", 2), ("6+", 2)]
    assert rows[1]["bleu"] == pytest.approx(100.0) and rows[1]["exact_match"] == 1.0
    assert rows[0]["exact_match"] == 0.0
    # BLEU of a bucket is sacreBLEU's corpus BLEU over its sentences, not a mean of sentence scores.
    expected = sacrebleu.corpus_bleu([hypotheses[1], hypotheses[2]], [[references[1], references[2]]])
    assert rows[0]["bleu"] == pytest.approx(expected.score)
    expected_chrf = sacrebleu.corpus_chrf([hypotheses[1], hypotheses[2]], [[references[1], references[2]]])
    assert rows[0]["chrf"] == pytest.approx(expected_chrf.score)


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


def test_length_plot_and_table(tmp_path):
    from PIL import Image

    rows = [{"bucket": "1-5", "count": 10, "bleu": 20.0}, {"bucket": "6+", "count": 4, "bleu": None}]
    path = plot_by_length({"none": rows, "bahdanau": rows}, "bleu", tmp_path / "plot.png", title="t")
    assert Image.open(path).size == (600, 400)
    assert markdown_table({"none": rows}, "bleu").splitlines() == [
        "| | 1-5 (n=10) | 6+ (n=4) |",
        "|---|---|---|",
        "| `none` | 20.00 | - |",
    ]
    with pytest.raises(ValueError, match="different buckets"):
        plot_by_length({"a": rows, "b": rows[:1]}, "bleu", tmp_path / "bad.png")


def _saved_config(folder: Path, attention_type: str) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"attention_type": attention_type}))
    return folder


def test_checkpoints_are_checked(tmp_path):
    none_dir = _saved_config(tmp_path / "n", "none")
    dot_dir = _saved_config(tmp_path / "d", "scaled_dot")
    types = ["none", "bahdanau", "scaled_dot"]
    assert parse_checkpoints([f"none={none_dir}", f"scaled_dot={dot_dir}"], types) == {
        "none": none_dir,
        "scaled_dot": dot_dir,
    }
    with pytest.raises(ValueError, match="'outputs/x': expected TYPE=DIR"):
        parse_checkpoints(["outputs/x"], types)
    with pytest.raises(ValueError, match=r"attention type 'general' is not among the compared ones \(none, bahdanau"):
        parse_checkpoints([f"general={dot_dir}"], types)
    with pytest.raises(ValueError, match="'none' is given twice"):
        parse_checkpoints([f"none={none_dir}", f"none={none_dir}"], types)
    with pytest.raises(FileNotFoundError, match="missing: no such folder"):
        parse_checkpoints([f"bahdanau={tmp_path / 'missing'}"], types)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json in it"):
        parse_checkpoints([f"bahdanau={tmp_path / 'empty'}"], types)
    with pytest.raises(ValueError, match="holds a model with attention_type 'scaled_dot'"):
        parse_checkpoints([f"bahdanau={dot_dir}"], types)


def test_comparison_refuses_bad_arguments_before_training(tmp_path):
    from transformers import Seq2SeqTrainingArguments

    from hf_attention.training import DataArguments, ModelArguments

    data = DataArguments(corpus="reversal", src_lang="src", tgt_lang="tgt", synthetic_size=10, test_size=100)
    training = Seq2SeqTrainingArguments(output_dir=str(tmp_path), report_to="none")

    def compare(**arguments):
        compare_attention_types(ComparisonArguments(**arguments), ModelArguments(), data, training)

    with pytest.raises(ValueError, match=r"--attention_types \['luong'\]: choose from bahdanau, scaled_dot"):
        compare(attention_types=["none", "luong"])
    with pytest.raises(ValueError, match="--plot_metric 'rouge'"):
        compare(plot_metric="rouge")
    # Reversal lengths 4-12 leave the bucket 1-3 empty: refused at once, not after hours of training.
    with pytest.raises(
        ValueError, match=r"length buckets 1-3 hold fewer than 20 items \(counts 1-3: 0, 4-7: 36, 8\+: 64\)"
    ):
        compare(bucket_edges=[1, 4, 8])
    assert not list(tmp_path.iterdir())


def test_reversal_lengths_reach_the_corpus():
    corpus = load_translation_corpus("reversal", "src", "tgt", validation_size=5, test_size=50, synthetic_size=50,
                                     synthetic_min_length=40, synthetic_max_length=60)  # fmt: skip
    lengths = [len(pair["src"].split()) for split in corpus.values() for pair in split["translation"]]
    assert min(lengths) >= 40 and max(lengths) <= 60 and max(lengths) > 55
    default = load_translation_corpus("reversal", "src", "tgt", validation_size=5, test_size=5, synthetic_size=50)
    assert {len(pair["src"].split()) for pair in default["train"]["translation"]} <= set(range(4, 13))
    with pytest.raises(ValueError, match="synthetic_min_length=9 and synthetic_max_length=5"):
        load_translation_corpus("reversal", "src", "tgt", synthetic_min_length=9, synthetic_max_length=5)
    with pytest.raises(ValueError, match="apply to the reversal task only, not to 'numbers'"):
        load_translation_corpus("numbers", "en", "de", synthetic_max_length=30)


def test_ding_comparison_preset_has_the_main_job_budget():
    demo = yaml.safe_load((REPO_ROOT / "configs" / "demo.yaml").read_text())
    preset = yaml.safe_load((REPO_ROOT / "configs" / "reproduce_ding.yaml").read_text())
    comparison_keys = {field for field in ComparisonArguments.__dataclass_fields__}
    training_keys = {key: value for key, value in preset.items() if key not in comparison_keys}
    expected = {key: value for key, value in demo.items() if key != "attention_type"}
    assert {**training_keys, "output_dir": demo["output_dir"]} == expected
