import pytest
import sacrebleu

from hf_attention.metrics import load_translation_metric

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
