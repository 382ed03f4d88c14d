"""hf_attention.evaluation: decoding and scoring generations, generated lengths, exact match."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import EvalPrediction

from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration
from hf_attention.arguments import DataArguments
from hf_attention.checkpoint_loading import load_checkpoint
from hf_attention.evaluation import (
    build_compute_metrics,
    check_decoding_grid,
    corpus_scores,
    draw_learning_curves,
    exact_match,
    generated_lengths,
    trained_split_arguments,
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


REPO_ROOT = Path(__file__).resolve().parent.parent
# The split a tiny reversal run was trained beside, as its training_run.json records it.
TRAINED_SPLIT = {"corpus": "reversal", "src_lang": "de", "tgt_lang": "en", "validation_size": 8, "test_size": 8,
                 "split_seed": 3, "synthetic_size": 64, "synthetic_min_length": 4,
                 "synthetic_max_length": 6}  # fmt: skip


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> Path:
    """A tiny untrained model saved as a training run leaves it: weights, tokenizer and the run record."""
    folder = tmp_path_factory.mktemp("tuned")
    tokenizer = train_tokenizer(["a b c d e f g h i j k l m n o p q r s t u v w x y z"] * 4, vocab_size=40)
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2)  # fmt: skip
    model = Seq2SeqAttentionForConditionalGeneration(config)
    model.generation_config.max_new_tokens = 8
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "training_run.json").write_text(json.dumps({"data_arguments": TRAINED_SPLIT}))
    return folder


def tune_script(*arguments) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO_ROOT / "scripts" / "tune_decoding.py"), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)


def test_the_split_settings_come_from_the_run_record_and_a_differing_one_is_refused(trained_checkpoint):
    checkpoint = load_checkpoint(trained_checkpoint)
    data_args = trained_split_arguments(checkpoint, DataArguments(), given=set())
    assert {name: getattr(data_args, name) for name in TRAINED_SPLIT} == TRAINED_SPLIT
    same = trained_split_arguments(checkpoint, DataArguments(corpus="reversal"), given={"corpus"})
    assert same.validation_size == 8
    with pytest.raises(ValueError, match=r"--validation_size 500: .* was trained with validation_size=8"):
        trained_split_arguments(checkpoint, DataArguments(), given={"validation_size"})
    checkpoint.training_record = None
    with pytest.raises(ValueError, match="no training_run.json with data_arguments"):
        trained_split_arguments(checkpoint, DataArguments(), given=set())


@pytest.mark.parametrize(
    ("beams", "penalties", "message"),
    [
        ([0, 3], [1.0], "--beam_sizes 0: every beam size must be a whole number >= 1"),
        ([-2], [1.0], "--beam_sizes -2"),
        ([], [1.0], "need at least one value"),
        ([3], [float("nan")], "--length_penalties nan: every length penalty must be a finite number"),
        ([3], [float("inf")], "--length_penalties inf"),
        ([3], [0.0], "--length_penalties 0.0: every length penalty must be > 0"),
        ([3], [-1.0], "--length_penalties -1.0"),
    ],
)
def test_an_impossible_decoding_grid_is_refused(beams, penalties, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_decoding_grid(beams, penalties)


def test_tune_decoding_script_refuses_nan_before_saving_anything(trained_checkpoint):
    before = (trained_checkpoint / "generation_config.json").read_text()
    for arguments, message in [
        (["--length_penalties", "nan", "--save", "true"], "--length_penalties nan: every length penalty must be"),
        (["--beam_sizes", "0", "3"], "--beam_sizes 0: every beam size must be a whole number >= 1"),
        (["--validation_size", "100"], "--validation_size 100: "),
    ]:
        result = tune_script("--model", trained_checkpoint, *arguments)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("tune_decoding.py: error: " + message)
    assert (trained_checkpoint / "generation_config.json").read_text() == before


def test_tune_decoding_script_scores_the_recorded_validation_split_and_saves_the_best(trained_checkpoint, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(trained_checkpoint, folder)
    result = tune_script("--model", folder, "--beam_sizes", "1", "2", "--length_penalties", "0.8", "--save", "true")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert sorted(row.split(" | ")[0] for row in rows) == ["| 1", "| 2"]
    best_beams, best_penalty = rows[0].split(" | ")[:2]
    saved = load_checkpoint(folder).generation_config
    assert (saved.num_beams, saved.length_penalty) == (int(best_beams[2:]), float(best_penalty))
