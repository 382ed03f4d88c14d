"""The Trainer's own push (`scripts/train.py --push_to_hub`): what reaches the Hub holds no token and no pickle."""

import json
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch
from huggingface_hub import CommitInfo, HfApi, RepoUrl
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects
from launching import TINY

from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.cli import parse_arguments
from hf_attention.run_record import write_run_record
from hf_attention.training_trainer import run_training

SECRET = "hf_FAKESECRET123"


@pytest.fixture
def recorded_uploads(monkeypatch) -> list[dict]:
    """Each `upload_folder` call as the files (path -> bytes, read at call time) it would have sent."""
    uploads = []

    def create_repo(self, repo_id, **kwargs):
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, *, folder_path, allow_patterns=None, ignore_patterns=None, run_as_future=False, **kwargs):
        folder = Path(folder_path)
        # The same selection `upload_folder` makes, with the library's own filter and default ignores.
        names = [path.relative_to(folder).as_posix() for path in sorted(folder.rglob("*")) if path.is_file()]
        ignore = [*(ignore_patterns or []), *DEFAULT_IGNORE_PATTERNS]
        selected = filter_repo_objects(names, allow_patterns=allow_patterns, ignore_patterns=ignore)
        prefix = f"{kwargs['path_in_repo'].strip('/')}/" if kwargs.get("path_in_repo") else ""
        uploads.append({f"{prefix}{name}": (folder / name).read_bytes() for name in selected})
        info = CommitInfo(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/{'0' * 40}",
                          commit_message="", commit_description="", oid="0" * 40)  # fmt: skip
        if not run_as_future:
            return info
        future = Future()  # the Trainer waits on its checkpoint pushes
        future.set_result(info)
        return future

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return uploads


def test_trainer_push_uploads_no_token_and_no_pickle(recorded_uploads, tmp_path):
    # Checkpoints at steps 3 and 6 are pushed as they are saved (hub_strategy every_save), then the final folder.
    arguments = [*TINY, "--output_dir", str(tmp_path), "--plot_examples", "0", "--push_to_hub", "true",
                 "--hub_model_id", "org/pushed", "--hub_token", SECRET]  # fmt: skip
    run_training(*parse_arguments((ModelArguments, DataArguments, TranslationTrainingArguments), arguments))

    assert len(recorded_uploads) >= 3
    for files in recorded_uploads:
        for name, content in files.items():
            assert SECRET.encode() not in content, name
            assert not name.endswith((".bin", ".pkl", ".pt", ".pth", ".pickle")), name
    final = recorded_uploads[-1]
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json", "training_run.json",
            "test_results.json", "modeling_seq2seq_attention.py"} <= final.keys()  # fmt: skip
    assert not any(name.startswith("checkpoint-") for files in recorded_uploads for name in files)
    # The output folder keeps the Trainer's own record of its arguments, token included: it stays local.
    assert SECRET.encode() in (tmp_path / "training_args.bin").read_bytes()
    record = json.loads((tmp_path / "training_run.json").read_text())
    assert record["training_arguments"]["hub_token"] == "<HUB_TOKEN>"


@pytest.mark.parametrize("strategy", ["checkpoint", "all_checkpoints"])
def test_pushing_resumable_checkpoints_is_refused_before_training(recorded_uploads, tmp_path, strategy):
    arguments = [*TINY, "--output_dir", str(tmp_path), "--push_to_hub", "true", "--hub_model_id", "org/pushed",
                 "--hub_token", SECRET, "--hub_strategy", strategy]  # fmt: skip
    with pytest.raises(ValueError, match=f"hub_strategy {strategy!r}.*every_save.*end"):
        run_training(*parse_arguments((ModelArguments, DataArguments, TranslationTrainingArguments), arguments))
    assert recorded_uploads == [] and not (tmp_path / "training_run.json").exists()


def test_run_record_masks_every_token(tmp_path):
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataArguments, TranslationTrainingArguments),
        ["--output_dir", str(tmp_path), "--hub_token", SECRET, "--lr_scheduler_kwargs", json.dumps({"token": SECRET})],
    )
    path = write_run_record(tmp_path, model_args, data_args, training_args, {}, 1, torch.device("cpu"))
    assert SECRET.encode() not in path.read_bytes()
    record = json.loads(path.read_text())
    assert record["training_arguments"]["hub_token"] == "<HUB_TOKEN>"
    assert record["training_arguments"]["lr_scheduler_kwargs"] == {"token": "<TOKEN>"}
    assert record["training_arguments"]["learning_rate"] == training_args.learning_rate
