"""scripts/train.py end to end: the Trainer job writes a complete checkpoint, resumes, and really learns."""

import json
import logging
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from launching import OFFLINE, REPO_ROOT, TINY, checked, run, script, torchrun
from safetensors.torch import load_file
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hf_attention.checkpoints import resolve_resume_checkpoint
from hf_attention.data import reversal_pairs
from hf_attention.translation import translate

BF16 = ["--bf16", "true", "--use_cpu", "true"]


def run_train(*arguments: str) -> subprocess.CompletedProcess:
    return run(script("train.py", *arguments))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("tiny")
    # bf16 autocast, as the main job trains: the test split must still be scored by the saved (fp32) model.
    run_train(*TINY, *BF16, "--output_dir", str(output_dir))
    return output_dir


def test_train_script_leaves_a_complete_loadable_checkpoint(tiny_run):
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSeq2SeqLM"].endswith("Seq2SeqAttentionForConditionalGeneration")
    for name in ("model.safetensors", "modeling_seq2seq_attention.py", "attention.py", "tokenizer.json",
                 "generation_config.json", "attention_0.png", "trainer_state.json",
                 "learning_curves.png"):  # fmt: skip
        assert (tiny_run / name).is_file(), name
    assert json.loads((tiny_run / "generation_config.json").read_text())["num_beams"] == 2

    results = json.loads((tiny_run / "test_results.json").read_text())
    assert 0.0 <= results["test_bleu"] <= 100.0 and 0.0 <= results["test_chrf"] <= 100.0
    assert results["test_bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert results["test_samples"] == 12
    state = json.loads((tiny_run / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert [entry["step"] for entry in state["log_history"] if "eval_bleu" in entry] == [3, 6]
    assert state["best_model_checkpoint"] is not None

    rows = [json.loads(line) for line in (tiny_run / "test_translations.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_run)
    tokenizer = AutoTokenizer.from_pretrained(tiny_run)
    assert model.lm_head.weight is model.model.encoder.embed_tokens.weight
    # The saved weights are the best checkpoint's, and they produce the test translations that were scored.
    best = load_file(Path(state["best_model_checkpoint"]) / "model.safetensors")
    torch.testing.assert_close(model.model.encoder.embed_tokens.weight, best["model.encoder.embed_tokens.weight"])
    sources = [row["source"] for row in rows]
    assert translate(model, tokenizer, sources, batch_size=5) == [row["hypothesis"] for row in rows]


def test_resume_from_checkpoint_continues_the_same_run(tiny_run, tmp_path):
    resumed = tmp_path / "resumed"
    arguments = [*TINY, *BF16, "--load_best_model_at_end", "false", "--output_dir", str(resumed)]
    run_train(*arguments, "--resume_from_checkpoint", str(tiny_run / "checkpoint-3"))
    state = json.loads((resumed / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    first_logged = min(entry["step"] for entry in state["log_history"] if "loss" in entry or "eval_bleu" in entry)
    assert first_logged >= 3
    # Same data order and RNG state as the uninterrupted run: its step-6 weights come out again.
    expected = load_file(tiny_run / "checkpoint-6" / "model.safetensors")
    actual = load_file(resumed / "model.safetensors")
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, msg=name)


@pytest.fixture(scope="module")
def fp32_run(tmp_path_factory) -> Path:
    """The tiny run in fp32: bf16 autocast needs a CPU whose oneDNN runs bf16 LSTMs (avx512_bf16)."""
    output_dir = tmp_path_factory.mktemp("tiny_fp32")
    run_train(*TINY, "--output_dir", str(output_dir))
    return output_dir


def test_resume_picks_the_newest_complete_checkpoint(fp32_run, tmp_path):
    """A run killed while saving checkpoint-6 left its config and code only: resuming the run folder starts from
    checkpoint-3 and ends where the uninterrupted run did."""
    resumed = tmp_path / "resumed"
    shutil.copytree(fp32_run / "checkpoint-3", resumed / "checkpoint-3")
    (resumed / "checkpoint-6").mkdir()
    for name in ("config.json", "configuration_seq2seq_attention.py", "modeling_seq2seq_attention.py"):
        shutil.copy(fp32_run / "checkpoint-6" / name, resumed / "checkpoint-6" / name)
    arguments = [*TINY, "--load_best_model_at_end", "false", "--output_dir", str(resumed)]
    run_train(*arguments, "--resume_from_checkpoint", "true")
    state = json.loads((resumed / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert min(entry["step"] for entry in state["log_history"] if "loss" in entry or "eval_bleu" in entry) >= 3
    expected = load_file(fp32_run / "checkpoint-6" / "model.safetensors")
    actual = load_file(resumed / "model.safetensors")
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, msg=name)


def test_saved_generation_config_limits_new_tokens(fp32_run):
    """The checkpoints keep their beam search, and bound generation by `max_new_tokens`, not `max_length`: a call
    with its own `max_new_tokens` then runs without a warning about both being set."""
    for folder in (fp32_run, fp32_run / "checkpoint-3"):
        saved = json.loads((folder / "generation_config.json").read_text())
        assert "max_length" not in saved, folder
        assert (saved["max_new_tokens"], saved["num_beams"]) == (64, 2), folder  # max_target_length, the preset

    model = AutoModelForSeq2SeqLM.from_pretrained(fp32_run)
    tokenizer = AutoTokenizer.from_pretrained(fp32_run)
    inputs = tokenizer(["a b c d e f g h", "q w e"], return_tensors="pt", padding=True)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    transformers_logger = logging.getLogger("transformers")
    transformers_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            generated = model.generate(**inputs, max_new_tokens=3)
    finally:
        transformers_logger.removeHandler(handler)
    messages = [str(warning.message) for warning in caught] + [record.getMessage() for record in records]
    assert not [message for message in messages if "max_length" in message or "max_new_tokens" in message]
    assert generated.shape[1] <= 1 + 3  # the decoder start and at most 3 new tokens


def test_run_without_generation_num_beams_scores_with_the_generation_config(tmp_path):
    """No `generation_num_beams` anywhere: the run ends, and scores and saves the generation config's beams."""
    beams = TINY.index("--generation_num_beams")
    arguments = [*TINY[:beams], *TINY[beams + 2 :]]
    for index, name in enumerate(["base.yaml", "reversal.yaml"], start=arguments.index("--config") + 1):
        preset, lines = tmp_path / name, (REPO_ROOT / "configs" / name).read_text().splitlines()
        preset.write_text("\n".join(line for line in lines if not line.startswith("generation_num_beams")) + "\n")
        arguments[index] = str(preset)
    no_evaluation = ["--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"]
    run_train(*arguments, *no_evaluation, "--plot_examples", "0", "--output_dir", str(tmp_path / "out"))
    results = json.loads((tmp_path / "out" / "test_results.json").read_text())
    saved = json.loads((tmp_path / "out" / "generation_config.json").read_text())
    assert isinstance(results["test_num_beams"], int)
    assert results["test_num_beams"] == saved["num_beams"] == 1  # generate's default: greedy


def test_fine_tuning_starts_from_the_given_checkpoint(tiny_run, tmp_path):
    finetuned = tmp_path / "finetuned"
    no_evaluation = ["--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"]
    run_train(*TINY, *no_evaluation, "--init_from", str(tiny_run), "--max_steps", "2", "--output_dir", str(finetuned))
    assert (finetuned / "tokenizer.json").read_text() == (tiny_run / "tokenizer.json").read_text()
    before, after = load_file(tiny_run / "model.safetensors"), load_file(finetuned / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[name], after[name]) for name in before)
    assert json.loads((finetuned / "config.json").read_text())["hidden_size"] == 32
    assert json.loads((finetuned / "trainer_state.json").read_text())["global_step"] == 2


def test_time_budget_stops_with_a_saved_evaluated_checkpoint_and_a_finished_schedule(tmp_path):
    # 3 s on a clock that moves 0.05 s at each reading (2 readings a step): about 30 steps, however busy the machine.
    command = script("train.py", *TINY, "--max_steps", "100000", "--max_train_minutes", "0.05", "--warmup_steps", "0",
                     "--eval_steps", "100000", "--save_steps", "100000", "--logging_steps", "1", "--plot_examples",
                     "0", "--max_tokens_per_batch", "100", "--word_dropout", "0.1", "--length_penalty", "0.8",
                     "--output_dir", str(tmp_path))  # fmt: skip
    run(checked(command, budget_clock=0.05))
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    step = state["global_step"]
    assert 10 < step < 100000
    assert state["stateful_callbacks"]["WallClockBudget"]["attributes"]["elapsed_seconds"] >= 3.0
    assert [entry["step"] for entry in state["log_history"] if "eval_bleu" in entry] == [step]
    rates = [entry["learning_rate"] for entry in state["log_history"] if "learning_rate" in entry]
    assert rates[0] > 0.5 * max(rates) and rates[-1] < 0.05 * max(rates)  # decayed over the time, to the end
    minutes = [entry["train_minutes"] for entry in state["log_history"]]
    assert minutes == sorted(minutes) and 0.05 <= minutes[-1] < 1.0  # every entry stamped with the time spent
    checkpoint = tmp_path / f"checkpoint-{step}"
    assert resolve_resume_checkpoint(True, tmp_path) == str(checkpoint)
    assert set(torch.load(checkpoint / "scheduler.pt")["_last_lr"]) == {0.0}  # the schedule ended with the budget
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint)
    assert model.config.word_dropout == 0.1
    assert json.loads((tmp_path / "generation_config.json").read_text())["length_penalty"] == 0.8
    torch.testing.assert_close(
        model.model.encoder.embed_tokens.weight,
        AutoModelForSeq2SeqLM.from_pretrained(tmp_path).model.encoder.embed_tokens.weight,
    )


def test_early_stopping_stops_when_validation_bleu_stalls(tmp_path):
    # A learning rate of 1e-9 leaves the translations, and so the BLEU, unchanged from one evaluation to the next.
    run_train(*TINY, "--learning_rate", "1e-9", "--max_steps", "20", "--eval_steps", "1", "--save_steps", "1",
              "--early_stopping_patience", "1", "--plot_examples", "0", "--output_dir", str(tmp_path))  # fmt: skip
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["global_step"] == 2


def test_translate_script_matches_the_library_and_plots(tiny_run, tmp_path):
    sentences = ["a b c d", "q w e r t y"]
    heatmap = tmp_path / "heatmap.png"
    command = [sys.executable, str(REPO_ROOT / "scripts" / "translate.py"), "--model", str(tiny_run),
               *sentences, "--plot-attention", str(heatmap)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=OFFLINE)
    assert result.returncode == 0, result.stderr[-3000:]
    model, tokenizer = AutoModelForSeq2SeqLM.from_pretrained(tiny_run), AutoTokenizer.from_pretrained(tiny_run)
    assert result.stdout.splitlines() == translate(model, tokenizer, sentences)
    assert heatmap.stat().st_size > 0
    from_stdin = subprocess.run(command[:4], input="a b c d\n", capture_output=True, text=True, env=OFFLINE)
    assert from_stdin.stdout.splitlines() == translate(model, tokenizer, sentences[:1])


@pytest.mark.parametrize(("attention_type", "batch_by"), [("bahdanau", "pairs"), ("scaled_dot", "pairs"),
                                                         ("bahdanau", "tokens")])  # fmt: skip
def test_two_processes_train_exactly_like_one(tmp_path, attention_type, batch_by):
    """torchrun, 2 CPU processes (gloo), per-process batch 8 = 1 process with batch 16 (or 60 tokens per process =
    120 on one): same losses, same weights.

    Catches a doubled loss (a model ignoring `num_items_in_batch`) and batches that differ between the two runs. The
    preset has no dropout, whose masks would differ per process.
    """
    common = [*TINY, "--attention_type", attention_type, "--max_steps", "8", "--eval_strategy", "no",
              "--save_strategy", "no", "--load_best_model_at_end", "false", "--plot_examples", "0",
              "--logging_steps", "1", "--use_cpu", "true"]  # fmt: skip
    size = "--per_device_train_batch_size" if batch_by == "pairs" else "--max_tokens_per_batch"
    one, two = ("16", "8") if batch_by == "pairs" else ("120", "60")
    run_train(*common, size, one, "--output_dir", str(tmp_path / "one"))
    # Checked: the job leaves its process group destroyed, as a job that exits cleanly under load must.
    run(checked(torchrun(2, "train.py", *common, size, two, "--output_dir", str(tmp_path / "two"))))

    def losses(name):
        state = json.loads((tmp_path / name / "trainer_state.json").read_text())
        return [entry["loss"] for entry in state["log_history"] if "loss" in entry]

    assert len(losses("one")) == 8
    assert losses("two") == pytest.approx(losses("one"), rel=1e-4)
    one, two = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, atol=1e-4, rtol=1e-4, msg=name)  # measured: 2e-6 apart


def test_two_processes_stop_a_time_budget_at_the_same_step(tmp_path):
    """Rank 1's clock runs twice as fast as the main process's: going by it, rank 1 would stop first and wait for a
    collective the main process never joins. Both stop where the main process's clock says, and save that step."""
    command = torchrun(2, "train.py", *TINY, "--max_steps", "100000", "--max_train_minutes", "0.05",
                       "--warmup_steps", "0", "--eval_steps", "100000", "--save_steps", "100000", "--logging_steps",
                       "1", "--plot_examples", "0", "--per_device_train_batch_size", "8", "--use_cpu", "true",
                       "--output_dir", str(tmp_path))  # fmt: skip
    run(checked(command, budget_clock=0.05), timeout=900)
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    step = state["global_step"]
    assert 10 < step < 100000
    assert [entry["step"] for entry in state["log_history"] if "eval_bleu" in entry] == [step]
    saved = sorted(path.name for path in (tmp_path / f"checkpoint-{step}").glob("rng_state_*.pth"))
    assert saved == ["rng_state_0.pth", "rng_state_1.pth"]  # each process saved the same last step


@pytest.mark.parametrize("attention_type", ["bahdanau", "scaled_dot"])
def test_reversal_is_learned_with_the_gold_alignment(tmp_path, attention_type):
    """The slow end-to-end check: the preset learns reversal and attends where it should."""
    run_train("--config", str(REPO_ROOT / "configs" / "base.yaml"), str(REPO_ROOT / "configs" / "reversal.yaml"),
              "--attention_type", attention_type, "--output_dir", str(tmp_path), "--disable_tqdm", "true")  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "test_translations.jsonl").read_text().splitlines()]
    exact_match = sum(row["hypothesis"] == row["reference"] for row in rows) / len(rows)
    assert exact_match >= 0.9, exact_match

    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    pairs = reversal_pairs(100, seed=12345)
    inputs = tokenizer([source for source, _ in pairs], text_target=[target for _, target in pairs],
                       return_tensors="pt", padding=True)  # fmt: skip
    lengths = inputs["attention_mask"].sum(dim=1, keepdim=True) - 1  # letters, without </s>
    assert torch.equal(lengths[:, 0], torch.tensor([len(source.split()) for source, _ in pairs]))  # 1 token a letter
    labels = inputs.pop("labels")
    with torch.no_grad():
        out = model(
            **inputs, labels=labels.masked_fill(labels == tokenizer.pad_token_id, -100), output_attentions=True
        )
    predicted = out.cross_attentions[-1].mean(dim=1).argmax(dim=-1)  # [batch, tgt_len]
    positions = torch.arange(labels.shape[1]).unsqueeze(0)
    gold = lengths - 1 - positions  # target letter i is source letter n-1-i
    scored = positions < lengths  # the letters, not </s> or padding
    alignment_accuracy = (predicted == gold)[scored].float().mean().item()
    assert alignment_accuracy >= 0.9, alignment_accuracy
