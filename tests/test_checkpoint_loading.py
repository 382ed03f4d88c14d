"""`load_checkpoint`, the one loader of every tool, and the weights manifest that `save_pretrained` writes and
`from_pretrained` checks: each edit that would load a model computing something else is refused by name."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM

from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration
from hf_attention.checkpoint_loading import CheckpointError, load_checkpoint
from hf_attention.tokenization import train_tokenizer
from hf_attention.weights_manifest import MANIFEST_NAME, file_sha256

TEXTS = ["Ich gehe nach Hause.", "Wie geht es dir?", "I am going home.", "How are you?"] * 10


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    tokenizer = train_tokenizer(TEXTS, vocab_size=60, model_max_length=16)
    config = Seq2SeqAttentionConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2,
                                    num_attention_heads=2, attention_type="scaled_dot")  # fmt: skip
    model = Seq2SeqAttentionForConditionalGeneration(config)
    path = tmp_path_factory.mktemp("checkpoint")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(saved, target)
    return target


def edit_json(path: Path, **changes) -> None:
    content = json.loads(path.read_text())
    content.update(changes)
    path.write_text(json.dumps(content))


def test_save_pretrained_records_the_architecture_and_the_weights_checksum(saved):
    manifest = json.loads((saved / MANIFEST_NAME).read_text())
    config = Seq2SeqAttentionConfig.from_pretrained(saved)
    assert manifest["architecture"] == json.loads(json.dumps(config.architecture()))
    assert manifest["architecture"]["encoder_layer_types"] == ["rnn", "rnn"]
    assert manifest["sha256"] == {"model.safetensors": file_sha256(saved / "model.safetensors")}


def test_load_checkpoint_gives_the_saved_model_tokenizer_and_settings(saved):
    checkpoint = load_checkpoint(saved)
    reference = Seq2SeqAttentionForConditionalGeneration.from_pretrained(saved)
    for (name, tensor), (_, expected) in zip(
        checkpoint.model.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(tensor, expected), name
    assert not checkpoint.model.training
    assert checkpoint.tokenizer.pad_token_id == checkpoint.config.pad_token_id
    assert checkpoint.generation_config is checkpoint.model.generation_config
    assert checkpoint.training_record is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("encoder_layer_types", ["self_attention", "rnn"]),
        ("decoder_layer_types", ["rnn", "self_attention"]),
        ("attention_type", "dot"),
        ("self_attention_type", "bahdanau"),
        ("tie_word_embeddings", False),
        ("rnn_type", "gru"),
        ("decoder_start_token_id", 2),
        ("num_attention_heads", 4),
    ],
)
def test_an_edited_architecture_field_in_config_json_is_refused_by_name(copy, field, value):
    saved_value = json.loads((copy / MANIFEST_NAME).read_text())["architecture"][field]
    edit_json(copy / "config.json", **{field: value})
    message = f"{copy / 'config.json'}: {field}={value!r}, but the weights were saved with {field}={saved_value!r}"
    with pytest.raises(ValueError, match=r"^" + re.escape(message)):
        AutoModelForSeq2SeqLM.from_pretrained(copy)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_checkpoint(copy)


def test_an_architecture_override_in_from_pretrained_is_refused(saved):
    with pytest.raises(ValueError, match=r"encoder_layer_types=\['self_attention', 'rnn'\], but the weights were"):
        Seq2SeqAttentionForConditionalGeneration.from_pretrained(saved, encoder_layer_types=["self_attention", "rnn"])
    with pytest.raises(ValueError, match="tie_word_embeddings=False, but the weights were saved with"):
        AutoModelForSeq2SeqLM.from_pretrained(saved, tie_word_embeddings=False)
    config = Seq2SeqAttentionConfig.from_pretrained(saved)
    config.rnn_type = "gru"
    with pytest.raises(ValueError, match="the config passed to from_pretrained.*rnn_type='gru'"):
        Seq2SeqAttentionForConditionalGeneration.from_pretrained(saved, config=config)
    with pytest.raises(CheckpointError, match="attention_type='dot', but the weights were saved"):
        load_checkpoint(saved, attention_type="dot")
    # What does not change the function may differ: the kernels, dropout.
    model = load_checkpoint(saved, compile_additive_attention=False, dropout=0.1).model
    assert model.config.dropout == 0.1


def test_a_model_type_edited_to_another_architecture_is_refused(copy):
    edit_json(copy / "config.json", model_type="t5")
    with pytest.raises(CheckpointError, match=re.escape(f"{copy / 'config.json'}: model_type='t5'; this package")):
        load_checkpoint(copy)
    with pytest.raises(ValueError, match="model_type='t5', but the weights were saved with model_type="):
        Seq2SeqAttentionForConditionalGeneration.from_pretrained(copy)


def test_a_weights_file_changed_after_saving_is_named(copy):
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-5] ^= 0x40  # one bit of the last tensor: the file still parses, the weights are wrong
    (copy / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(OSError, match=re.escape(f"{copy / 'model.safetensors'}: the file's bytes changed after")):
        AutoModelForSeq2SeqLM.from_pretrained(copy)
    with pytest.raises(CheckpointError, match="the file's bytes changed after it was saved"):
        load_checkpoint(copy)
    # Without the manifest it loads unchecked, as checkpoints saved before it do.
    (copy / MANIFEST_NAME).unlink()
    assert load_checkpoint(copy).model is not None


def test_sharded_weights_are_checked_file_by_file(saved, tmp_path):
    model = Seq2SeqAttentionForConditionalGeneration.from_pretrained(saved)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    shards = sorted(tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["sha256"] == {shard.name: file_sha256(shard) for shard in shards}
    Seq2SeqAttentionForConditionalGeneration.from_pretrained(tmp_path)
    shards[0].write_bytes(shards[0].read_bytes()[:-1] + b"\x00")
    with pytest.raises(OSError, match=re.escape(f"{shards[0]}: the file's bytes changed")):
        Seq2SeqAttentionForConditionalGeneration.from_pretrained(tmp_path)


def test_a_missing_or_foreign_tokenizer_is_refused(copy, tmp_path):
    (copy / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match=re.escape(f"{copy}: no tokenizer.json; a checkpoint of this package")):
        load_checkpoint(copy)
    bigger = train_tokenizer(TEXTS * 3 + ["Bahnhof Zug Stadt Hund Katze"] * 5, vocab_size=200)
    assert len(bigger) > Seq2SeqAttentionConfig.from_pretrained(copy).vocab_size
    bigger.save_pretrained(copy)
    with pytest.raises(CheckpointError, match=r"the tokenizer has \d+ tokens, more than the model's vocab_size="):
        load_checkpoint(copy)


def test_non_finite_or_impossible_generation_settings_are_refused(copy):
    edit_json(copy / "generation_config.json", length_penalty=float("nan"))
    with pytest.raises(CheckpointError, match=r"generation_config.json: length_penalty=nan is not a finite number"):
        load_checkpoint(copy)
    edit_json(copy / "generation_config.json", length_penalty=1.0, num_beams=0)
    with pytest.raises(CheckpointError, match=r"num_beams"):
        load_checkpoint(copy)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("weights_manifest.json", "{garbage", "weights_manifest.json: not a readable weights_manifest.json"),
        ("weights_manifest.json", "[]", "weights_manifest.json: not a readable weights_manifest.json"),
        ("generation_config.json", "{garbage", "generation_config.json: not a readable JSON file"),
        ("config.json", "{garbage", "config.json: not a readable JSON config"),
    ],
)
def test_an_unreadable_record_file_is_named(copy, name, content, message):
    (copy / name).write_text(content)
    with pytest.raises(CheckpointError, match=re.escape(f"{copy / name}: {message.split(': ', 1)[1]}")):
        load_checkpoint(copy)


def test_an_unfinished_folder_and_an_unknown_value_name_the_checkpoint(copy, tmp_path):
    partial = tmp_path / "checkpoint-8.partial"
    shutil.copytree(copy, partial)
    with pytest.raises(CheckpointError, match="checkpoint-8.partial: an unfinished checkpoint"):
        load_checkpoint(partial)
    edit_json(copy / "config.json", attention_type="cosine")
    with pytest.raises(CheckpointError, match=re.escape(f"{copy}: attention_type='cosine' is not one of")):
        load_checkpoint(copy)


def test_the_training_record_is_read_from_the_folder_or_its_run_folder(saved, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(saved, run / "checkpoint-10")
    (run / "training_run.json").write_text(json.dumps({"data_arguments": {"corpus": "ding"}}))
    assert load_checkpoint(run / "checkpoint-10").training_record == {"data_arguments": {"corpus": "ding"}}
    shutil.copy(run / "training_run.json", run / "checkpoint-10" / "training_run.json")
    edit_json(run / "checkpoint-10" / "training_run.json", own=True)
    assert load_checkpoint(run / "checkpoint-10").training_record["own"] is True


def test_a_missing_folder_or_an_unreachable_hub_id_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match=re.escape(f"{tmp_path / 'none'}: no such checkpoint folder")):
        load_checkpoint(tmp_path / "none")
    with pytest.raises(CheckpointError, match="no-such-user/no-such-model: not a local checkpoint folder"):
        load_checkpoint("no-such-user/no-such-model")
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_checkpoint("x" * 5000)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json; not a checkpoint folder"):
        load_checkpoint(tmp_path / "empty")


def test_remote_code_checkpoints_carry_and_check_the_manifest(copy):
    assert (copy / "weights_manifest.py").is_file()
    edit_json(copy / "config.json", attention_type="dot")
    # A new interpreter that never imports the package: only the code files saved in the checkpoint run.
    code = (
        "import sys; from transformers import AutoModelForSeq2SeqLM\n"
        f"AutoModelForSeq2SeqLM.from_pretrained({str(copy)!r}, trust_remote_code=True)\n"
        "assert 'hf_attention' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1",
                            "HF_HOME": str(copy.parent / "hf_home"), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 1
    assert "attention_type='dot', but the weights were saved with attention_type='scaled_dot'" in result.stderr
