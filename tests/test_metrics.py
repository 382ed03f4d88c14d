import numpy as np
import pytest
import sacrebleu
import torch
from transformers import EvalPrediction

from hf_attention.metrics import load_translation_metric
from hf_attention.tokenization import train_tokenizer
from hf_attention.training import build_compute_metrics, generated_lengths

HYPOTHESES = ["The cat sat on the mat.", "He goes home!", "It is raining today.", "completely unrelated words"]
REFERENCES = ["The cat sat on a mat.", "He goes home!", "It rains today.", "I like green tea."]


@pytest.fixture(scope="module")
def metric():
    return load_translation_metric()


def test_scores_equal_sacrebleu_called_directly(metric):
    scores = metric.compute(predictions=HYPOTHESES, references=[[reference] for reference in REFERENCES])
    bleu = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES])
    chrf = sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES])
    assert scores["bleu"] == pytest.approx(bleu.score)
    assert scores["chrf"] == pytest.approx(chrf.score)
    assert scores["precisions"] == pytest.approx(bleu.precisions)
    assert (scores["sys_len"], scores["ref_len"]) == (bleu.sys_len, bleu.ref_len)
    assert scores["bleu_signature"] == "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" + sacrebleu.__version__
    assert 0 < scores["bleu"] < 100


def test_plain_reference_strings_and_several_references(metric):
    as_strings = metric.compute(predictions=HYPOTHESES, references=REFERENCES)
    as_lists = metric.compute(predictions=HYPOTHESES, references=[[reference] for reference in REFERENCES])
    assert as_strings["bleu"] == as_lists["bleu"]
    second = ["A cat sat on the mat.", "He is going home!", "It is raining today.", "I like tea."]
    two = metric.compute(
        predictions=HYPOTHESES, references=[list(pair) for pair in zip(REFERENCES, second, strict=True)]
    )
    assert two["bleu"] == pytest.approx(sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES, second]).score)
    assert two["bleu"] > as_strings["bleu"]
    assert metric.compute(predictions=REFERENCES, references=REFERENCES)["bleu"] == pytest.approx(100.0)


# Ids as this package's tokenizers number them: pad 0, bos (the decoder start) 1, eos 2; -100 is the Trainer's
# padding between batches of different lengths.
GENERATED = np.array(
    [
        [1, 7, 8, 9, 2, 0, 0, -100],  # 3 words and </s>, padded
        [1, 2, 0, 0, 0, 0, 0, -100],  # </s> at once
        [1, 5, 5, 5, 5, 5, 5, 5],  # no </s> before the length limit
        [1, 7, 2, 7, 2, 0, -100, -100],  # what follows the first </s> is not generated text
        [1, 7, 8, 2, 2, 2, 2, 2],  # beam search pads the hypotheses that ended early with </s>, not <pad>
    ]
)


def test_generated_lengths_count_tokens_after_the_start_up_to_the_first_eos():
    lengths = generated_lengths(GENERATED, pad_token_id=0, decoder_start_token_id=1, eos_token_id=2)
    assert lengths.tolist() == [4, 1, 7, 2, 3]
    # From a torch tensor, as `generate` returns them.
    assert generated_lengths(torch.tensor(GENERATED), 0, 1, 2).tolist() == [4, 1, 7, 2, 3]
    # Without an eos id: every token that is neither the start nor padding.
    assert generated_lengths(GENERATED, 0, 1).tolist() == [4, 1, 7, 4, 7]
    # A start token later in the sequence is a generated token; only the leading one is the decoder's input.
    assert generated_lengths(np.array([[1, 4, 1, 2]]), 0, 1, 2).tolist() == [3]
    # Models whose padding is their eos: the first eos counts, the eos padding after it does not.
    assert generated_lengths(np.array([[0, 6, 6, 1, 1, 1]]), 1, 0, 1).tolist() == [3]


def test_generated_lengths_refuse_ids_that_are_not_a_batch():
    with pytest.raises(ValueError, match=r"\[batch, length\].*\(4,\)"):
        generated_lengths(np.array([1, 2, 3, 4]), 0, 1, 2)


def test_gen_len_of_validation_is_the_mean_generated_length():
    tokenizer = train_tokenizer(["a b c d e f g h", "h g f e d c b a"], vocab_size=40)
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    labels = np.array([[7, 8, 9, 2, -100, -100, -100, -100]] * len(GENERATED))
    compute_metrics = build_compute_metrics(tokenizer, load_translation_metric(), decoder_start_token_id=1)
    metrics = compute_metrics(EvalPrediction(predictions=GENERATED, label_ids=labels))
    assert metrics["gen_len"] == pytest.approx((4 + 1 + 7 + 2 + 3) / 5)
