"""hf_attention.hub and scripts/push_to_hub.py: the card, the upload folder, the upload calls, and loading the
result through the real Hub client from a local read-only mirror (olah)."""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import CommitInfo, HfApi, ModelCard, RepoUrl
from launching import OFFLINE, TINY, free_port, run, script
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.cli import parse_arguments
from hf_attention.hub import build_model_card, check_checkpoint, check_repo_id, push_checkpoint, stage_upload
from hf_attention.training_trainer import run_training
from hf_attention.translation import translate

SENTENCES = ["a b c d", "q w e r t y", "z"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("checkpoint")
    run(script("train.py", *TINY, "--output_dir", str(output_dir)))
    return output_dir


@pytest.fixture(scope="module")
def staged(checkpoint, tmp_path_factory) -> Path:
    """The dry run's folder, made by the script as a user would."""
    out_dir = tmp_path_factory.mktemp("staged") / "upload"
    command = script("push_to_hub.py", str(checkpoint), "--repo-id", "org/tiny-reversal", "--license", "mit",
                     "--dry-run", str(out_dir))  # fmt: skip
    result = run(command)
    assert "nothing was uploaded" in result.stdout
    return out_dir


def test_dry_run_folder_holds_the_model_its_code_tokenizer_metrics_and_card(checkpoint, staged):
    names = {path.relative_to(staged).as_posix() for path in staged.rglob("*") if path.is_file()}
    code = {"configuration_seq2seq_attention.py", "modeling_seq2seq_attention.py", "attention.py",
            "cache_seq2seq_attention.py", "pipeline_seq2seq_attention.py"}  # fmt: skip
    records = {"training_run.json", "train_results.json", "test_results.json", "test_translations.jsonl"}
    assert {"README.md", "config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "attention_0.png"} | code | records <= names  # fmt: skip
    assert not any(name.startswith("checkpoint-") or name.endswith(".bin") for name in names)
    assert (staged / "model.safetensors").read_bytes() == (checkpoint / "model.safetensors").read_bytes()


def test_card_metadata_parses_and_its_numbers_are_the_checkpoints(checkpoint, staged):
    card = ModelCard.load(staged / "README.md")
    test = json.loads((checkpoint / "test_results.json").read_text())
    config = json.loads((checkpoint / "config.json").read_text())
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "translation"
    assert card.data.language == ["src", "tgt"]
    assert card.data.license == "mit"  # --license
    assert {"translation", "seq2seq", config["attention_type"]} <= set(card.data.tags)
    results = {result.metric_type: result for result in card.data.eval_results}
    assert results["bleu"].metric_value == round(test["test_bleu"], 2)
    assert results["chrf"].metric_value == round(test["test_chrf"], 2)
    assert results["bleu"].metric_config == test["test_bleu_signature"]
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint)
    assert f"| parameters | {model.num_parameters():,} |" in card.text
    assert f"{config['hidden_size']} units" in card.text
    run_record = json.loads((checkpoint / "training_run.json").read_text())
    assert f"| train | {run_record['splits']['train']} |" in card.text
    assert f"| optimizer steps | {run_record['training_arguments']['max_steps']} |" in card.text
    assert 'from_pretrained("org/tiny-reversal", trust_remote_code=True, revision="main")' in card.text
    assert "{{" not in card.content and "![Cross attention of a test sentence](attention_0.png)" in card.text


def test_incomplete_folders_are_refused_with_what_is_missing(checkpoint, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    (broken / "tokenizer.json").unlink()
    (broken / "attention.py").unlink()  # imported by the modeling file
    with pytest.raises(ValueError, match="missing: ") as error:
        check_checkpoint(broken)
    assert "tokenizer.json" in str(error.value) and "attention.py" in str(error.value)

    shutil.copy(checkpoint / "tokenizer.json", broken)
    shutil.copy(checkpoint / "attention.py", broken)
    config = json.loads((broken / "config.json").read_text())
    del config["auto_map"]["AutoModelForSeq2SeqLM"]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="missing: config.json: auto_map with AutoModelForSeq2SeqLM"):
        check_checkpoint(broken)
    with pytest.raises(ValueError, match="not empty"):
        stage_upload(checkpoint, checkpoint, "org/name")


def test_an_edited_or_damaged_checkpoint_is_not_shared(checkpoint, tmp_path):
    edited = tmp_path / "edited"
    shutil.copytree(checkpoint, edited, ignore=shutil.ignore_patterns("checkpoint-*"))
    config = json.loads((edited / "config.json").read_text())
    (edited / "config.json").write_text(json.dumps({**config, "attention_type": "dot"}))
    with pytest.raises(ValueError, match="attention_type='dot', but the weights were saved with"):
        stage_upload(edited, tmp_path / "up", "org/name")
    (edited / "config.json").write_text(json.dumps(config))
    weights = bytearray((edited / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (edited / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(ValueError, match="the file's bytes changed after it was saved"):
        stage_upload(edited, tmp_path / "up", "org/name")
    assert not (tmp_path / "up").exists()


@pytest.fixture(scope="module")
def untied_checkpoint(checkpoint, tmp_path_factory) -> Path:
    """The checkpoint saved again as a model whose output layer is its own, not the embedding table."""
    folder = tmp_path_factory.mktemp("untied")
    shutil.copytree(checkpoint, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoint-*"))
    # Untied by copying the embedding table into the output layer: loading the tied weights with
    # tie_word_embeddings=False would leave the output layer random (and is refused).
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    model.save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["tie_word_embeddings"] is False
    return folder


@pytest.mark.parametrize(("tied", "license"), [(True, "apache-2.0"), (False, "gpl-2.0")])
def test_card_states_tying_licence_corpus_widget_and_languages(checkpoint, untied_checkpoint, tied, license):
    folder = checkpoint if tied else untied_checkpoint
    card = build_model_card(folder, "org/tiny-reversal", license=license)
    assert card.data.license == license
    assert card.data.language == ["src", "tgt"]  # the run record's src_lang / tgt_lang
    first = json.loads((folder / "test_translations.jsonl").read_text().splitlines()[0])
    assert card.data.widget == [{"text": first["source"]}]
    assert ("embeddings tied with the output layer" in card.text) is tied
    assert ("output layer separate from the embeddings" in card.text) is not tied
    assert "Corpus `reversal`: a synthetic task generated by hf-attention (no third-party text)" in card.text
    assert f"The weights are released under `{license}`." in card.text


def test_card_of_the_default_corpus_names_it_and_its_gpl_licence(checkpoint, tmp_path):
    folder = tmp_path / "ding"
    shutil.copytree(checkpoint, folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    run_record = json.loads((folder / "training_run.json").read_text())
    run_record["data_arguments"] |= {"corpus": "ding", "src_lang": "de", "tgt_lang": "en"}
    (folder / "training_run.json").write_text(json.dumps(run_record))
    card = build_model_card(folder, "org/tiny")
    assert card.data.language == ["de", "en"]
    assert card.data.license is None  # not chosen: no licence claimed for the weights
    assert "Debian package `trans-de-en`" in card.text and "licence GPL-2.0-or-later" in card.text
    assert "No licence was chosen for the weights" in card.text


@pytest.mark.parametrize(("num_beams", "decoding"), [(1, "greedy decoding:"), (4, "beam search with 4 beams:")])
def test_card_names_the_decoding_the_test_split_was_scored_with(checkpoint, tmp_path, num_beams, decoding):
    folder = tmp_path / "scored"
    shutil.copytree(checkpoint, folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    results = json.loads((folder / "test_results.json").read_text())
    (folder / "test_results.json").write_text(json.dumps(results | {"test_num_beams": num_beams}))
    assert decoding in build_model_card(folder, "org/tiny").text


@pytest.mark.parametrize("license", ["Apache 2.0", "", "mit/"])
def test_malformed_licences_are_refused(checkpoint, license):
    with pytest.raises(ValueError, match=f"--license {license!r}: expected a Hub licence id"):
        build_model_card(checkpoint, "org/tiny", license=license)


@pytest.mark.parametrize("repo_id", ["name-only", "a/b/c", "org/bad name", "org/-dash"])
def test_malformed_repo_ids_are_refused(repo_id):
    with pytest.raises(ValueError, match="repo-id"):
        check_repo_id(repo_id)


@pytest.fixture
def fake_hub(monkeypatch):
    """Record the Hub client calls instead of making them (no server here serves the upload API)."""
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = {"repo_id": repo_id, **kwargs}
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_branch(self, repo_id, **kwargs):
        calls["create_branch"] = {"repo_id": repo_id, **kwargs}

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        kwargs["files"] = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        kwargs["readme"] = (folder / "README.md").read_text() if (folder / "README.md").is_file() else None
        calls["upload_folder"] = kwargs
        url = f"https://huggingface.co/{kwargs['repo_id']}/commit/{'0' * 40}"
        return CommitInfo(commit_url=url, commit_message="", commit_description="", oid="0" * 40)

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_branch", create_branch)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_creates_the_repo_and_uploads_the_staged_folder(checkpoint, staged, fake_hub):
    push_checkpoint(checkpoint, "org/tiny-reversal", private=True, revision="v1", commit_message="first",
                    token="hf_not_a_real_token", license="mit")  # fmt: skip
    assert fake_hub["create_repo"] == {"repo_id": "org/tiny-reversal", "private": True, "exist_ok": True,
                                       "repo_type": "model"}  # fmt: skip
    assert fake_hub["create_branch"] == {"repo_id": "org/tiny-reversal", "branch": "v1", "exist_ok": True}
    upload = fake_hub["upload_folder"]
    assert (upload["repo_id"], upload["revision"], upload["commit_message"]) == ("org/tiny-reversal", "v1", "first")
    assert upload["files"] == {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert upload["readme"] == (staged / "README.md").read_text().replace('revision="main"', 'revision="v1"')


def test_push_without_a_token_says_how_to_get_one(checkpoint, fake_hub, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no stored login
    with pytest.raises(ValueError, match="HF_TOKEN or run `hf auth login`"):
        push_checkpoint(checkpoint, "org/tiny-reversal")
    assert fake_hub == {}


def test_train_script_honours_the_trainers_push_to_hub(fake_hub, tmp_path):
    """`--push_to_hub --hub_model_id`: the Trainer creates the repo, and its final upload carries our card."""
    arguments = [*TINY, "--save_strategy", "no", "--load_best_model_at_end", "false", "--output_dir", str(tmp_path),
                 "--push_to_hub", "true", "--hub_model_id", "org/pushed",
                 "--hub_token", "hf_not_a_real_token"]  # fmt: skip
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataArguments, TranslationTrainingArguments), arguments
    )
    metrics = run_training(model_args, data_args, training_args)
    assert fake_hub["create_repo"]["repo_id"] == "org/pushed"
    upload = fake_hub["upload_folder"]
    assert (upload["repo_id"], Path(upload["folder_path"])) == ("org/pushed", tmp_path)
    card = ModelCard(upload["readme"])
    assert card.data.eval_results[0].metric_value == round(metrics["test_bleu"], 2)
    assert "org/pushed" in card.text and {"config.json", "model.safetensors", "tokenizer.json"} <= upload["files"]


@pytest.fixture
def hub_mirror(staged, tmp_path):
    """A read-only Hub on 127.0.0.1 (olah) serving the dry-run folder, committed to git, as `org/tiny-reversal`."""
    repo = tmp_path / "mirrors" / "models" / "org" / "tiny-reversal"
    shutil.copytree(staged, repo)
    git = ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "dry run"]):
        subprocess.run([*git, *command], check=True)
    port = free_port()
    (tmp_path / "olah.toml").write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{tmp_path / "repos"}"\n'
        f'mirrors-path = ["{tmp_path / "mirrors"}"]\n\n[accessibility]\noffline = true\n'
    )
    olah = shutil.which("olah-cli", path=str(Path(sys.executable).parent)) or shutil.which("olah-cli")
    server = subprocess.Popen([olah, "-c", str(tmp_path / "olah.toml")], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:  # `GET /` answers 500 on olah: readiness is the port accepting connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "olah did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


LOAD_FROM_HUB = """
import json, sys
sys.modules["hf_attention"] = None  # the package must not be importable: only the repository's code may run
from huggingface_hub import snapshot_download
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

model = AutoModelForSeq2SeqLM.from_pretrained("org/tiny-reversal", trust_remote_code=True)
# olah answers 401 where the Hub answers 404 (the tokenizer lists a folder this repository lacks): download the
# snapshot through the client, then load the tokenizer from the client's cache by repository id.
snapshot_download("org/tiny-reversal")
tokenizer = AutoTokenizer.from_pretrained("org/tiny-reversal", trust_remote_code=True, local_files_only=True)
translations = []
for sentence in json.loads(sys.argv[1]):
    generated = model.generate(**tokenizer([sentence], return_tensors="pt"), num_beams=2, max_new_tokens=12)
    translations += tokenizer.batch_decode(generated, skip_special_tokens=True)
print(json.dumps({"module": type(model).__module__, "translations": translations}))
"""


def test_loads_from_the_hub_with_remote_code_and_translates_the_same(checkpoint, hub_mirror, tmp_path):
    env = {**OFFLINE, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub_mirror, "HF_HOME": str(tmp_path / "hf_home")}
    result = subprocess.run([sys.executable, "-c", LOAD_FROM_HUB, json.dumps(SENTENCES)], capture_output=True,
                            text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert loaded["module"].startswith("transformers_modules.")  # the repository's copy of the code
    model, tokenizer = AutoModelForSeq2SeqLM.from_pretrained(checkpoint), AutoTokenizer.from_pretrained(checkpoint)
    expected = translate(model, tokenizer, SENTENCES, batch_size=1, num_beams=2, max_new_tokens=12)
    assert loaded["translations"] == expected
    assert (tmp_path / "hf_home" / "hub" / "models--org--tiny-reversal").is_dir()  # came through the Hub client
