"""Which checkpoint `--resume_from_checkpoint` resumes: the newest complete one, never a half-written folder."""

import json
from pathlib import Path

import pytest
from launching import TINY
from transformers import Seq2SeqTrainingArguments

from hf_attention.arguments import DataArguments, ModelArguments
from hf_attention.checkpoints import resolve_resume_checkpoint
from hf_attention.cli import parse_arguments
from hf_attention.training_trainer import run_training


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
        run_training(*parse_arguments((ModelArguments, DataArguments, Seq2SeqTrainingArguments), arguments))
    assert not (tmp_path / "out").exists()
