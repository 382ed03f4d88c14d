"""Checkpoint folders: which checkpoint `--resume_from_checkpoint` resumes (the newest complete one, never a
half-written folder), and checkpoint averaging (only of checkpoints of one architecture and tokenizer)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from launching import REPO_ROOT, TINY, run
from safetensors.torch import load_file
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration
from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.averaging import average_checkpoints, checkpoints_to_average, save_averaged_checkpoint
from hf_attention.checkpoints import resolve_resume_checkpoint
from hf_attention.cli import parse_arguments
from hf_attention.tokenization import train_tokenizer
from hf_attention.training_trainer import run_training
from hf_attention.weights_manifest import file_sha256


def make_checkpoint(folder: Path, complete: bool = True) -> Path:
    """A Trainer checkpoint folder; an incomplete one holds what `save_model` writes first (config and code)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "modeling_seq2seq_attention.py").write_text("")
    if complete:
        (folder / "model.safetensors").write_bytes(b"weights")
        (folder / "optimizer.pt").write_bytes(b"state")
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": int(folder.name.split("-")[1])}))
    return folder


@pytest.fixture
def run_folder(tmp_path) -> Path:
    make_checkpoint(tmp_path / "checkpoint-3")
    make_checkpoint(tmp_path / "checkpoint-6")
    make_checkpoint(tmp_path / "checkpoint-10", complete=False)  # newest by step, not by name: 10 > 6
    (tmp_path / "checkpoint-8.partial").mkdir()  # not a checkpoint name
    return tmp_path


@pytest.mark.parametrize("value", ["true", "True", True])
def test_true_resumes_the_newest_complete_checkpoint_of_the_output_dir(run_folder, value):
    assert resolve_resume_checkpoint(value, run_folder) == str(run_folder / "checkpoint-6")


def test_a_run_folder_resumes_its_newest_complete_checkpoint(run_folder, tmp_path):
    assert resolve_resume_checkpoint(str(run_folder), tmp_path / "elsewhere") == str(run_folder / "checkpoint-6")


def test_a_complete_checkpoint_is_resumed_as_given(run_folder):
    assert resolve_resume_checkpoint(str(run_folder / "checkpoint-3"), run_folder) == str(run_folder / "checkpoint-3")


@pytest.mark.parametrize("value", [None, "", "false", "False", False])
def test_no_resume(run_folder, value):
    assert resolve_resume_checkpoint(value, run_folder) is None


def test_an_incomplete_checkpoint_is_refused_with_what_it_lacks(run_folder):
    with pytest.raises(ValueError, match="checkpoint-10.*missing: model.safetensors, trainer_state.json") as error:
        resolve_resume_checkpoint(str(run_folder / "checkpoint-10"), run_folder)
    assert "checkpoint-6" in str(error.value)  # the complete one to resume instead


def test_a_truncated_trainer_state_makes_a_checkpoint_incomplete(run_folder):
    (run_folder / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')
    assert resolve_resume_checkpoint("true", run_folder) == str(run_folder / "checkpoint-3")
    with pytest.raises(ValueError, match="trainer_state.json \\(not valid JSON"):
        resolve_resume_checkpoint(str(run_folder / "checkpoint-6"), run_folder)


def test_a_folder_without_complete_checkpoints_is_refused(tmp_path):
    make_checkpoint(tmp_path / "checkpoint-5", complete=False)
    with pytest.raises(ValueError, match="no complete checkpoint.*checkpoint-5 lacks model.safetensors"):
        resolve_resume_checkpoint("true", tmp_path)
    with pytest.raises(ValueError, match="no such folder"):
        resolve_resume_checkpoint(str(tmp_path / "missing"), tmp_path)


def test_run_training_refuses_an_incomplete_checkpoint_before_loading_anything(run_folder, tmp_path):
    arguments = [*TINY, "--output_dir", str(tmp_path / "out"),
                 "--resume_from_checkpoint", str(run_folder / "checkpoint-10")]  # fmt: skip
    with pytest.raises(ValueError, match="missing: model.safetensors, trainer_state.json"):
        run_training(*parse_arguments((ModelArguments, DataArguments, TranslationTrainingArguments), arguments))
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def three_checkpoints(tmp_path_factory) -> Path:
    """A run folder with checkpoint-1, -2, -3: one architecture, three different random inits."""
    run_dir = tmp_path_factory.mktemp("averaging")
    tokenizer = train_tokenizer(["a b c d e f g"] * 4, vocab_size=40)
    for step in (1, 2, 3):
        torch.manual_seed(step)
        config = Seq2SeqAttentionConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                        num_attention_heads=2)  # fmt: skip
        folder = run_dir / f"checkpoint-{step}"
        Seq2SeqAttentionForConditionalGeneration(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return run_dir


def test_averaged_weights_are_the_mean_of_the_state_dicts(three_checkpoints, tmp_path):
    folders = checkpoints_to_average([three_checkpoints])
    assert [folder.name for folder in folders] == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    weights = [load_file(folder / "model.safetensors") for folder in folders]
    averaged = average_checkpoints(folders)
    assert averaged.keys() == weights[0].keys()
    for name, tensor in averaged.items():
        expected = torch.stack([w[name].double() for w in weights]).mean(dim=0).float()
        assert torch.equal(tensor, expected), name

    output = save_averaged_checkpoint(folders, tmp_path / "averaged")
    model = AutoModelForSeq2SeqLM.from_pretrained(output)
    assert model.lm_head.weight is model.model.encoder.embed_tokens.weight  # still tied
    for name, tensor in model.state_dict().items():
        stored = name if name in averaged else "model.encoder.embed_tokens.weight"
        assert torch.equal(tensor, averaged[stored]), name
    assert len(AutoTokenizer.from_pretrained(output)) == model.config.vocab_size
    assert json.loads((output / "averaged_checkpoints.json").read_text()) == [str(folder) for folder in folders]


def test_the_last_checkpoints_of_a_run_and_the_command(three_checkpoints, tmp_path):
    # A training's output folder holds the final weights beside its checkpoints: it stands for the checkpoints.
    shutil.copy(three_checkpoints / "checkpoint-3" / "model.safetensors", three_checkpoints / "model.safetensors")
    assert [folder.name for folder in checkpoints_to_average([three_checkpoints], last=2)] == [
        "checkpoint-2", "checkpoint-3",
    ]  # fmt: skip
    run([sys.executable, str(REPO_ROOT / "scripts" / "average_checkpoints.py"), "--checkpoints",
         str(three_checkpoints), "--last", "2", "--output_dir", str(tmp_path / "out")])  # fmt: skip
    expected = average_checkpoints(checkpoints_to_average([three_checkpoints], last=2))
    got = load_file(tmp_path / "out" / "model.safetensors")
    assert all(torch.equal(got[name], expected[name]) for name in expected)


def test_checkpoints_that_do_not_match_are_refused(three_checkpoints, tmp_path):
    config = Seq2SeqAttentionConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2)
    Seq2SeqAttentionForConditionalGeneration(config).save_pretrained(tmp_path / "narrow")
    with pytest.raises(ValueError, match=r"narrow: model.decoder.bridge.bias is \(8,\) torch.float32"):
        average_checkpoints([three_checkpoints / "checkpoint-1", tmp_path / "narrow"])
    with pytest.raises(ValueError, match="neither model.safetensors nor checkpoint-N folders"):
        checkpoints_to_average([tmp_path])
    with pytest.raises(ValueError, match="no such folder"):
        checkpoints_to_average([tmp_path / "missing"])


def averaging_script(*arguments) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO_ROOT / "scripts" / "average_checkpoints.py"), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def save_variant(folder: Path, tokenizer, **config) -> Path:
    """A checkpoint of the averaging fixture's size with other `config` values."""
    torch.manual_seed(7)
    sizes = {"vocab_size": len(tokenizer), "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
    Seq2SeqAttentionForConditionalGeneration(Seq2SeqAttentionConfig(**sizes | config)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"attention_type": "dot"}, "attention_type='dot', but .*checkpoint-1 has attention_type='bahdanau'"),
        ({"rnn_type": "gru"}, "rnn_type='gru'"),
        ({"num_attention_heads": 4}, "num_attention_heads=4"),
    ],
)
def test_checkpoints_of_another_architecture_are_refused_by_field(three_checkpoints, tmp_path, config, field):
    tokenizer = AutoTokenizer.from_pretrained(three_checkpoints / "checkpoint-1")
    other = save_variant(tmp_path / "other", tokenizer, **config)
    with pytest.raises(ValueError, match=field):
        save_averaged_checkpoint([three_checkpoints / "checkpoint-1", other], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_scaled_dot_and_dot_checkpoints_of_equal_shapes_are_not_averaged(tmp_path):
    tokenizer = train_tokenizer(["a b c d e f g"] * 4, vocab_size=40)
    scaled = save_variant(tmp_path / "scaled", tokenizer, attention_type="scaled_dot")
    dot = save_variant(tmp_path / "dot", tokenizer, attention_type="dot")
    shapes = {name: tensor.shape for name, tensor in load_file(scaled / "model.safetensors").items()}
    assert shapes == {name: tensor.shape for name, tensor in load_file(dot / "model.safetensors").items()}
    result = averaging_script("--checkpoints", scaled, dot, "--output_dir", tmp_path / "out")
    assert result.returncode == 1 and not (tmp_path / "out").exists()
    assert result.stderr.strip().splitlines()[-1] == (
        f"average_checkpoints.py: error: {dot}: attention_type='dot', but {scaled} has attention_type='scaled_dot'; "
        "only checkpoints of one architecture can be averaged"
    )


def test_checkpoints_of_another_tokenizer_are_refused(three_checkpoints, tmp_path):
    tokenizer = train_tokenizer(["h i j k l m n"] * 4, vocab_size=40)
    other = save_variant(tmp_path / "other", tokenizer)
    with pytest.raises(ValueError, match="its tokenizer differs from .*checkpoint-1's"):
        save_averaged_checkpoint([three_checkpoints / "checkpoint-1", other], tmp_path / "out")


def test_an_output_dir_that_is_an_input_holds_one_or_has_files_is_refused(three_checkpoints, tmp_path):
    folders = checkpoints_to_average([three_checkpoints])
    before = (folders[0] / "model.safetensors").read_bytes()
    for output_dir in (folders[0], three_checkpoints, folders[0] / "inside"):
        with pytest.raises(ValueError, match="it is or contains the input"):
            save_averaged_checkpoint(folders, output_dir)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not an empty folder"):
        save_averaged_checkpoint(folders, tmp_path / "used")
    assert (tmp_path / "used" / "notes.txt").read_text() == "mine"
    assert (folders[0] / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("last", [0, -1])
def test_last_below_one_is_refused(three_checkpoints, tmp_path, last):
    with pytest.raises(ValueError, match=f"--last {last}: expected a whole number >= 1"):
        checkpoints_to_average([three_checkpoints], last=last)
    result = averaging_script("--checkpoints", three_checkpoints, "--last", last, "--output_dir", tmp_path / "out")
    assert result.returncode == 1 and f"--last {last}: expected a whole number >= 1" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_named_twice_is_refused(three_checkpoints):
    first = three_checkpoints / "checkpoint-1"
    with pytest.raises(ValueError, match="named twice"):
        checkpoints_to_average([first, first])
    with pytest.raises(ValueError, match="named twice"):
        checkpoints_to_average([three_checkpoints, three_checkpoints / ".." / three_checkpoints.name / "checkpoint-2"])


def test_a_damaged_input_is_named_and_nothing_is_written(three_checkpoints, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(three_checkpoints / "checkpoint-2", damaged)
    weights = bytearray((damaged / "model.safetensors").read_bytes())
    weights[-3] ^= 0x10
    (damaged / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(ValueError, match="damaged/model.safetensors: the file's bytes changed after it was saved"):
        save_averaged_checkpoint([three_checkpoints / "checkpoint-1", damaged], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_average_keeps_the_run_record_and_records_its_own_weights(three_checkpoints, tmp_path):
    record = {"data_arguments": {"corpus": "reversal", "validation_size": 16}}
    (three_checkpoints / "training_run.json").write_text(json.dumps(record))
    try:
        output = save_averaged_checkpoint(checkpoints_to_average([three_checkpoints], last=2), tmp_path / "out")
    finally:
        (three_checkpoints / "training_run.json").unlink()
    assert json.loads((output / "training_run.json").read_text()) == record
    manifest = json.loads((output / "weights_manifest.json").read_text())
    assert manifest["sha256"]["model.safetensors"] == file_sha256(output / "model.safetensors")
    assert not (tmp_path / "out.partial").exists()
