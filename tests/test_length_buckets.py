"""hf_attention.length_buckets: buckets from their edges, per-bucket scores, the Markdown table, bad edges."""

import pytest
import sacrebleu

from hf_attention.length_buckets import (
    LengthBucket,
    bucket_index,
    group_by_length,
    make_buckets,
    scores_by_length,
    word_lengths,
)
from hf_attention.metrics import load_translation_metric


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
