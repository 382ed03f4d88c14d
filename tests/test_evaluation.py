"""hf_attention.evaluation: decoding and scoring generations, generated lengths, exact match."""

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import EvalPrediction

from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration
from hf_attention.arguments import DataArguments
from hf_attention.evaluation import (
    build_compute_metrics,
    corpus_scores,
    draw_learning_curves,
    exact_match,
    generated_lengths,
    tune_decoding,
)
from hf_attention.metrics import load_translation_metric
from hf_attention.tokenization import train_tokenizer
from hf_attention.translation import translate


def test_exact_match():
    assert exact_match(["a b", "c", " d  e "], ["a b", "x", "d e"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        exact_match(["a", "b"], ["a"])


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


def test_validation_gen_len_is_the_mean_generated_length_in_tokens():
    """`eval_gen_len` counts what `generate` produced up to the first EOS: not the start token, not the padding."""
    from accelerate import Accelerator

    from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration
    from hf_attention.evaluation import evaluate_generation
    from hf_attention.metrics import load_translation_metric
    from hf_attention.tokenization import train_tokenizer

    texts = ["ein kleines haus", "a small house", "das ist gut", "that is good"] * 5
    tokenizer = train_tokenizer(texts, vocab_size=60)
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1)
    model = Seq2SeqAttentionForConditionalGeneration(config).eval()
    model.generation_config.max_new_tokens = 6
    sources = tokenizer(["ein kleines haus", "das ist gut", "das haus"], padding=True, return_tensors="pt")
    batch = {**sources, "labels": tokenizer(text_target=["a", "b", "c"], padding=True, return_tensors="pt").input_ids}
    generated = model.generate(**sources)
    expected = []
    for row in generated.tolist():
        tokens = row[1:]  # after the decoder start token
        expected.append(tokens.index(config.eos_token_id) + 1 if config.eos_token_id in tokens else len(tokens))
    metrics = evaluate_generation(Accelerator(cpu=True), model, [batch], tokenizer, load_translation_metric())
    assert metrics["eval_gen_len"] == pytest.approx(sum(expected) / len(expected))


def test_decoding_is_tuned_on_validation_with_every_setting_scored_as_translate_scores_it():
    rows = [{"src": " ".join(word), "tgt": " ".join(reversed(word))} for word in ("abcd", "bcde", "cdef", "defa")]
    validation = Dataset.from_dict({"translation": rows})
    tokenizer = train_tokenizer([text for row in rows for text in row.values()], vocab_size=40)
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2)  # fmt: skip
    model = Seq2SeqAttentionForConditionalGeneration(config).eval()
    model.generation_config.max_new_tokens = 6
    data_args = DataArguments(src_lang="src", tgt_lang="tgt")
    records = tune_decoding(model, tokenizer, validation, data_args, [1, 3], [0.5, 2.0], batch_size=2)
    assert sorted((record["num_beams"], record["length_penalty"]) for record in records) == [
        (1, 1.0),
        (3, 0.5),
        (3, 2.0),
    ]  # fmt: skip  (greedy once: the length penalty acts on beams only)
    assert [record["bleu"] for record in records] == sorted((record["bleu"] for record in records), reverse=True)
    sources, references = [row["src"] for row in rows], [row["tgt"] for row in rows]
    for record in records:
        hypotheses = translate(model, tokenizer, sources, num_beams=record["num_beams"],
                               length_penalty=record["length_penalty"])  # fmt: skip
        expected = corpus_scores(hypotheses, references)
        assert (record["bleu"], record["chrf"]) == (expected["bleu"], expected["chrf"])


def test_learning_curves_are_drawn_only_for_a_run_that_logged_a_curve(tmp_path):
    # Fewer steps than logging_steps and no evaluation: the Trainer logs only its summary.
    assert draw_learning_curves([{"train_runtime": 1.0, "train_loss": 4.0, "step": 2}], tmp_path) is None
    assert not (tmp_path / "learning_curves.png").exists()
    path = draw_learning_curves([{"loss": 4.0, "step": 2}], tmp_path)
    assert path == tmp_path / "learning_curves.png" and path.is_file()
