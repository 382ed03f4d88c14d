"""End to end: the main job's script trains with the Seq2SeqTrainer and the model really learns to align."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM

REPO_ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("demo", REPO_ROOT / "scripts" / "demo.py")
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)


@pytest.mark.parametrize("attention_type", ["bahdanau", "scaled_dot"])
def test_reversal_is_learned_with_the_right_alignment(tmp_path, attention_type):
    command = [
        sys.executable, str(REPO_ROOT / "scripts" / "demo.py"), "--attention_type", attention_type,
        "--output_dir", str(tmp_path), "--max_steps", "400", "--per_device_train_batch_size", "64",
        "--learning_rate", "3e-3", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "demo_metrics.json").read_text())
    assert metrics["exact_match"] >= 0.9, metrics
    assert (tmp_path / "attention.png").stat().st_size > 0

    # Alignment accuracy: target word i of a length-n reversal must look at source word n-1-i.
    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    test = demo.reversal_examples(100, 4, 12, seed=1)
    labels = torch.tensor(test["labels"])
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(test["input_ids"]),
            attention_mask=torch.tensor(test["attention_mask"]),
            labels=labels,
            output_attentions=True,
        )
    predicted = out.cross_attentions[-1].mean(dim=1).argmax(dim=-1)  # [batch, tgt_len]
    lengths = torch.tensor(test["attention_mask"]).sum(dim=1, keepdim=True)
    positions = torch.arange(labels.shape[1]).unsqueeze(0)
    gold = lengths - 1 - positions
    scored = positions < lengths  # the reversed words, not the end-of-sequence label or padding
    accuracy = (predicted == gold)[scored].float().mean().item()
    assert accuracy >= 0.9, accuracy
