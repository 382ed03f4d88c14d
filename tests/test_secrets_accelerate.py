"""A Hub token given to scripts/train_accelerate.py must reach no file of the run and nothing uploaded from it."""

import shutil
from pathlib import Path

import pytest
import yaml
from huggingface_hub import CommitInfo, HfApi, RepoUrl
from launching import TINY, run, script

from hf_attention.hub import push_checkpoint, stage_upload

FAKE_TOKEN = "hf_FAKESECRET123"


def files_holding(folder: Path, secret: str) -> list[str]:
    """The files under `folder` whose bytes contain `secret`."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")
                  if path.is_file() and secret.encode() in path.read_bytes())  # fmt: skip


@pytest.fixture(scope="module")
def run_with_a_token(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("run")
    run(script("train_accelerate.py", *TINY, "--load_best_model_at_end", "false", "--plot_examples", "0",
               "--hub_token", FAKE_TOKEN, "--report_to", "tensorboard", "--output_dir", str(output_dir)))  # fmt: skip
    return output_dir


def test_the_token_is_in_no_file_of_the_run(run_with_a_token):
    (hparams,) = run_with_a_token.glob("runs/*/hparams.yml")
    logged = yaml.safe_load(hparams.read_text())
    # The hyper-parameters are still logged, the token fields not at all (not even masked).
    assert (logged["learning_rate"], logged["max_steps"], logged["hidden_size"]) == (0.003, 6, 32)
    assert not [name for name in logged if name.endswith("_token")]
    assert list(run_with_a_token.glob("runs/events.out.tfevents.*"))  # TensorBoard wrote its own files too
    assert files_holding(run_with_a_token, FAKE_TOKEN) == []


def test_the_token_is_in_nothing_staged_or_uploaded(run_with_a_token, tmp_path, monkeypatch):
    uploaded = {}

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        uploaded.update({p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()})
        return CommitInfo(commit_url="https://huggingface.co/org/run/commit/0", commit_message="",
                          commit_description="", oid="0" * 40)  # fmt: skip

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: RepoUrl(f"https://hf.co/{repo_id}"))
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    push_checkpoint(run_with_a_token, "org/run", token=FAKE_TOKEN)
    assert any(name.startswith("runs/") for name in uploaded) and "README.md" in uploaded
    assert [name for name, content in uploaded.items() if FAKE_TOKEN.encode() in content] == []
    staged = stage_upload(run_with_a_token, tmp_path / "staged", "org/run")
    assert files_holding(staged, FAKE_TOKEN) == []


def test_a_folder_whose_files_hold_a_token_is_refused_and_nothing_uploaded(run_with_a_token, tmp_path, monkeypatch):
    calls = []
    for name in ("create_repo", "create_branch", "upload_folder"):
        monkeypatch.setattr(HfApi, name, lambda self, *args, _name=name, **kwargs: calls.append(_name))
    leaky = tmp_path / "leaky"
    shutil.copytree(run_with_a_token, leaky)
    (leaky / "notes.txt").write_text(f"pushed with {FAKE_TOKEN}\n")
    with pytest.raises(ValueError, match=r"refusing to upload .*leaky: notes\.txt hold\(s\) a Hugging Face token"):
        push_checkpoint(leaky, "org/run", token=FAKE_TOKEN)
    assert calls == []
    # Anyone's token, recognised by its shape: the dry run refuses it too and writes nothing.
    (leaky / "notes.txt").write_text("hf_" + "aBcDeFgHiJ" * 3 + "kLmN")
    with pytest.raises(ValueError, match=r"notes\.txt hold\(s\) a Hugging Face token"):
        stage_upload(leaky, tmp_path / "staged", "org/run")
    assert not (tmp_path / "staged").exists()
