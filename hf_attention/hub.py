"""Sharing a trained checkpoint on the Hugging Face Hub: completeness check, model card, upload.

`build_model_card` fills `model_card.md` (a Jinja template, the Hub's own format through `huggingface_hub.ModelCard`)
from the checkpoint folder's files alone: `config.json`, `model.safetensors`, `training_run.json` (written by both
training scripts), `train_results.json` and `test_results.json`. `stage_upload` writes the exact folder that goes
to the Hub; `push_checkpoint` uploads it with `HfApi.create_repo` and `HfApi.upload_folder`.
"""

import json
import re
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.utils import HFValidationError, validate_repo_id
from safetensors import safe_open
from transformers.dynamic_module_utils import get_relative_imports

MODEL_CARD_TEMPLATE = Path(__file__).with_name("model_card.md")
PACKAGE_URL = "https://pypi.org/project/hf-attention/"
REQUIRED_FILES = [
    "config.json",
    "model.safetensors",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_run.json",
    "train_results.json",
    "test_results.json",
]
# What goes to the Hub: the model, its code, tokenizer, metrics and records, heatmaps, TensorBoard logs; not the
# resumable training states (checkpoint-*/, optimizer) nor pickles (training_args.bin).
UPLOAD_PATTERNS = ["*.json", "*.jsonl", "*.py", "*.safetensors", "*.png", "*.txt", "runs/**/*"]
# Hyper-parameters shown in the card, as (card name, argument group, argument name).
CARD_HYPERPARAMETERS = [
    ("optimizer steps", "training_arguments", "max_steps"),
    ("batch size per process", "training_arguments", "per_device_train_batch_size"),
    ("gradient accumulation steps", "training_arguments", "gradient_accumulation_steps"),
    ("learning rate", "training_arguments", "learning_rate"),
    ("schedule", "training_arguments", "lr_scheduler_type"),
    ("warm-up steps", "training_arguments", "warmup_steps"),
    ("weight decay", "training_arguments", "weight_decay"),
    ("gradient clipping (norm)", "training_arguments", "max_grad_norm"),
    ("label smoothing", "training_arguments", "label_smoothing_factor"),
    ("dropout", "model_arguments", "dropout"),
    ("bf16", "training_arguments", "bf16"),
    ("batching", "training_arguments", "train_sampling_strategy"),
    ("seed", "training_arguments", "seed"),
]
# The shape of a Hub access token ("hf_" and 34 letters today); a staged file holding one is never uploaded.
HUB_TOKEN_PATTERN = re.compile(rb"hf_[A-Za-z0-9]{30,}")


def check_checkpoint(folder: str | Path) -> None:
    """Raise `ValueError` naming everything a shareable checkpoint folder lacks: the files above, an `auto_map` in
    the config, and every code file the `auto_map` modules import."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such checkpoint folder")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if (folder / "config.json").is_file():
        auto_map = json.loads((folder / "config.json").read_text()).get("auto_map", {})
        if "AutoModelForSeq2SeqLM" not in auto_map:
            missing.append("config.json: auto_map with AutoModelForSeq2SeqLM (save with hf_attention imported)")
        missing += _missing_code_files(folder, [f"{reference.split('.')[0]}.py" for reference in auto_map.values()])
    if (folder / "test_results.json").is_file():
        results = json.loads((folder / "test_results.json").read_text())
        missing += [f"test_results.json: {key}" for key in ("test_bleu", "test_chrf") if key not in results]
    if missing:
        raise ValueError(f"{folder} is not a complete checkpoint; missing: {', '.join(dict.fromkeys(missing))}")


def _missing_code_files(folder: Path, names: list[str]) -> list[str]:
    """The code files among `names` and everything they import relatively that `folder` lacks."""
    pending, seen, missing = list(names), set(), []
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if not (folder / name).is_file():
            missing.append(name)
            continue
        pending += [f"{module}.py" for module in get_relative_imports(folder / name)]
    return sorted(missing)


def check_repo_id(repo_id: str) -> None:
    """`repo_id` must be `namespace/name` as the Hub spells it."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"--repo-id {repo_id!r} is not a valid Hub repository id: {error}") from None
    if repo_id.count("/") != 1:
        raise ValueError(f"--repo-id {repo_id!r}: expected 'namespace/name', e.g. 'your-user/bahdanau-de-en'")


def count_parameters(weights: Path) -> int:
    """Number of parameters stored in a safetensors file (tied weights are stored, and counted, once)."""
    with safe_open(str(weights), framework="pt") as tensors:
        total = 0
        for name in tensors.keys():
            shape = tensors.get_slice(name).get_shape()
            count = 1
            for size in shape:
                count *= size
            total += count
    return total


def _format_duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s"


def build_model_card(
    folder: str | Path, repo_id: str, revision: str = "main", license: str = "apache-2.0"
) -> ModelCard:
    """The model card of a complete checkpoint folder (see `check_checkpoint`), for `repo_id` at `revision`."""
    folder = Path(folder)
    check_checkpoint(folder)
    config = json.loads((folder / "config.json").read_text())
    run = json.loads((folder / "training_run.json").read_text())
    train = json.loads((folder / "train_results.json").read_text())
    test = json.loads((folder / "test_results.json").read_text())
    data_args = run["data_arguments"]
    src_lang, tgt_lang = data_args["src_lang"], data_args["tgt_lang"]
    model_name = repo_id.split("/")[-1]
    corpus = data_args["corpus"]
    # A Hub dataset id can be linked from the card; a local file or built-in corpus is named in the text only.
    is_hub_dataset = re.fullmatch(r"[\w.-]+/[\w.-]+", corpus) is not None and not Path(corpus).exists()
    bleu, chrf = round(test["test_bleu"], 2), round(test["test_chrf"], 2)
    eval_results = [
        EvalResult(
            task_type="translation",
            task_name=f"Translation {src_lang}-{tgt_lang}",
            dataset_type=corpus if is_hub_dataset else f"{corpus}-{src_lang}-{tgt_lang}",
            dataset_name=f"{corpus} ({src_lang}-{tgt_lang}), test split",
            dataset_split="test",
            metric_type=metric,
            metric_name=name,
            metric_value=value,
            metric_config=test[f"test_{metric}_signature"],
        )
        for metric, name, value in (("bleu", "BLEU", bleu), ("chrf", "chrF", chrf))
    ]
    card_data = ModelCardData(
        language=[src_lang, tgt_lang],
        license=license,
        library_name="transformers",
        pipeline_tag="translation",
        tags=["translation", "seq2seq", "rnn", "attention", config["attention_type"], "hf-attention"],
        datasets=[corpus] if is_hub_dataset else None,
        model_name=model_name,
        eval_results=eval_results,
    )
    training_args = run["training_arguments"]
    example = {}
    translations = folder / "test_translations.jsonl"
    if translations.is_file():
        first = json.loads(translations.read_text(encoding="utf-8").splitlines()[0])
        example = {"example_source": first["source"], "example_hypothesis": first["hypothesis"],
                   "example_reference": first["reference"]}  # fmt: skip
    init_from = run["model_arguments"].get("init_from")
    return ModelCard.from_template(
        card_data,
        template_path=str(MODEL_CARD_TEMPLATE),
        model_name=model_name,
        repo_id=repo_id,
        revision=revision,
        package_url=PACKAGE_URL,
        src_lang=src_lang,
        tgt_lang=tgt_lang,
        attention_type=config["attention_type"],
        num_attention_heads=config["num_attention_heads"],
        num_hidden_layers=config["num_hidden_layers"],
        rnn_type=config["rnn_type"],
        hidden_size=config["hidden_size"],
        vocab_size=config["vocab_size"],
        num_parameters=f"{count_parameters(folder / 'model.safetensors'):,}",
        num_beams=json.loads((folder / "generation_config.json").read_text()).get("num_beams", 1),
        corpus=corpus,
        split_seed=data_args["split_seed"],
        splits=run["splits"],
        max_source_length=data_args["max_source_length"],
        max_target_length=data_args["max_target_length"],
        init=f"`{init_from}`" if init_from else "scratch",
        script=run["script"],
        world_size=run["world_size"],
        hardware=run["hardware"],
        train_runtime=_format_duration(train["train_runtime"]),
        hyperparameters={name: run[group][key] for name, group, key in CARD_HYPERPARAMETERS},
        max_steps=training_args["max_steps"],
        versions=run["versions"],
        test_samples=test["test_samples"],
        test_num_beams=test["test_num_beams"],
        test_bleu=bleu,
        test_chrf=chrf,
        test_bleu_signature=test["test_bleu_signature"],
        test_chrf_signature=test["test_chrf_signature"],
        heatmaps=sorted(path.name for path in folder.glob("attention_*.png")),
        **example,
    )


def stage_upload(
    folder: str | Path,
    out_dir: str | Path,
    repo_id: str,
    revision: str = "main",
    license: str | None = None,
    token: str | None = None,
) -> Path:
    """Write the folder that `push_checkpoint` uploads: the shareable files of `folder` and the card as README.md.

    Raises `ValueError`, and writes nothing, if a file to upload holds `token`, the token of this machine
    (`HF_TOKEN` or the stored login), or anything shaped like a Hub token.
    """
    check_repo_id(repo_id)
    folder, out_dir = Path(folder), Path(out_dir)
    card = build_model_card(folder, repo_id, revision, license=license)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty: give a new or empty folder to stage the upload in")
    shared = sorted(
        {path for pattern in UPLOAD_PATTERNS for path in folder.glob(pattern)
         if path.is_file() and not path.relative_to(folder).parts[0].startswith("checkpoint-")}
    )  # fmt: skip
    _check_no_tokens(folder, shared, [secret for secret in (token, get_token()) if secret])
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in shared:
        target = out_dir / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    card.save(out_dir / "README.md")
    return out_dir


def _check_no_tokens(folder: Path, files: list[Path], tokens: list[str]) -> None:
    """Raise `ValueError` naming the `files` of `folder` that hold one of `tokens` or a Hub-token-shaped string."""
    leaking = []
    for path in files:
        content = path.read_bytes()
        if HUB_TOKEN_PATTERN.search(content) or any(token.encode() in content for token in tokens):
            leaking.append(path.relative_to(folder).as_posix())
    if leaking:
        raise ValueError(
            f"refusing to upload {folder}: {', '.join(leaking)} hold(s) a Hugging Face token; remove it from those "
            "files (and revoke the token if they were ever shared)"
        )


def push_checkpoint(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload hf-attention checkpoint",
    token: str | None = None,
    license: str | None = None,
):
    """Create `repo_id` if needed and upload the staged checkpoint in one commit; returns the `CommitInfo`.

    The token is `token`, else `HF_TOKEN`, else the one `hf auth login` stored. `license` goes into the card (see
    `build_model_card`). Nothing is uploaded if a staged file holds a token (see `stage_upload`).
    """
    check_repo_id(repo_id)
    check_checkpoint(folder)
    token = token or get_token()
    if token is None:
        raise ValueError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
    with tempfile.TemporaryDirectory() as staging:
        # Staged first: a folder that is refused leaves no empty repository behind.
        stage_upload(folder, staging, repo_id, revision or "main", license=license, token=token)
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id, folder_path=staging, revision=revision, commit_message=commit_message
        )


__all__ = ["build_model_card", "check_checkpoint", "check_repo_id", "push_checkpoint", "stage_upload"]
