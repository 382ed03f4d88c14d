"""`weights_manifest.json`: what a checkpoint's weights were saved with, written beside them by `save_pretrained` and
checked by `from_pretrained`.

It records the architecture (`Seq2SeqAttentionConfig.architecture()`: the config fields the weights belong to) and
the SHA-256 of every weights file. An edited `config.json` (or a `from_pretrained` override) that changes the
architecture is refused, naming the field and both values, instead of loading weights into a model that computes
something else; a weights file whose bytes changed after saving is refused, naming the file, instead of translating
garbage. A checkpoint without a manifest (saved before it existed, or written by other tools) loads unchecked.

Part of the model core: it is copied into every checkpoint with the modeling file, so it imports only the standard
library and transformers.
"""

import hashlib
import json
import math
from pathlib import Path

from transformers.utils import cached_file

MANIFEST_NAME = "weights_manifest.json"
FORMAT_VERSION = 1


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (weights files may be larger than memory allows twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_files(folder: str | Path) -> list[str]:
    """The names of the safetensors weights files in `folder` (one file, or the shards an index names)."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return sorted(set(json.loads(index.read_text())["weight_map"].values()))
    return ["model.safetensors"] if (folder / "model.safetensors").is_file() else []


def write_manifest(folder: str | Path, architecture: dict) -> Path:
    """Write `weights_manifest.json` into `folder` for the weights files it holds now; returns its path."""
    folder = Path(folder)
    files = {name: file_sha256(folder / name) for name in weights_files(folder)}
    manifest = {"format_version": FORMAT_VERSION, "architecture": architecture, "sha256": files}
    path = folder / MANIFEST_NAME
    # Written under another name and renamed: a reader never sees a manifest written only in part.
    partial = folder / f"{MANIFEST_NAME}.partial"
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    partial.replace(path)
    return path


def read_manifest(checkpoint, **hub_kwargs) -> tuple[dict, str] | tuple[None, None]:
    """`(manifest, its path)` of a checkpoint folder or Hub repo, `(None, None)` where it has none.

    Raises:
        ValueError: naming the file when it is not a manifest this version can read.
    """
    path = cached_file(checkpoint, MANIFEST_NAME, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    if path is None:
        return None, None
    try:
        manifest = json.loads(Path(path).read_text())
        if not isinstance(manifest["architecture"], dict) or not isinstance(manifest["sha256"], dict):
            raise TypeError("architecture and sha256 must be objects")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: not a readable {MANIFEST_NAME} ({type(error).__name__}: {error}); save the checkpoint again, "
            f"or remove the file to load the checkpoint unchecked"
        ) from None
    return manifest, path


def _same(recorded, value) -> bool:
    if isinstance(recorded, float) and isinstance(value, float) and math.isnan(recorded) and math.isnan(value):
        return True
    # JSON has lists only: a tuple in a config compares equal to the list it was saved as.
    if isinstance(value, tuple):
        value = list(value)
    return recorded == value


def check_architecture(manifest: dict, manifest_path: str, architecture: dict, source: str) -> None:
    """Raise `ValueError` naming the first field where `architecture` (of the model about to be built, as `source`
    describes it) differs from what the weights were saved with."""
    recorded = manifest["architecture"]
    for name, value in architecture.items():
        if name in recorded and not _same(recorded[name], value):
            raise ValueError(
                f"{source}: {name}={value!r}, but the weights were saved with {name}={recorded[name]!r} "
                f"({manifest_path}); they compute another function under this value: load the checkpoint with "
                f"{name}={recorded[name]!r}, or train a new model"
            )


def check_weights(checkpoint, manifest: dict, manifest_path: str, **hub_kwargs) -> None:
    """Raise `OSError` naming the first weights file whose bytes differ from those recorded when it was saved."""
    for name, expected in sorted(manifest["sha256"].items()):
        path = cached_file(checkpoint, name, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
        if path is None:
            raise OSError(f"{checkpoint}: {name} is missing ({manifest_path} records it)")
        actual = file_sha256(path)
        if actual != expected:
            raise OSError(
                f"{path}: the file's bytes changed after it was saved (SHA-256 {actual[:16]}..., recorded "
                f"{expected[:16]}... in {manifest_path}): it is damaged or was replaced; save or download the "
                f"checkpoint again (or remove {MANIFEST_NAME} to load it unchecked)"
            )


__all__ = [
    "MANIFEST_NAME",
    "check_architecture",
    "check_weights",
    "file_sha256",
    "read_manifest",
    "weights_files",
    "write_manifest",
]
