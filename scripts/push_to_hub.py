"""Share a trained checkpoint on the Hugging Face Hub, with a model card written from the folder's own files.

    python scripts/push_to_hub.py outputs/demo --repo-id your-user/bahdanau-de-en --license gpl-2.0 [--private] \\
        [--revision BRANCH]
    python scripts/push_to_hub.py outputs/demo --repo-id your-user/bahdanau-de-en --dry-run /tmp/upload

The token comes from HF_TOKEN or `hf auth login`. `--dry-run OUT_DIR` writes the exact folder that would be
uploaded (README.md = the model card) and uploads nothing. `--license` is the Hub licence id the card gives the
weights (none without it); the card names the training corpus's own licence (the default corpus: GPL-2.0-or-later).
A folder whose files hold a Hub token is refused. The work is in hf_attention/hub.py.
"""

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_attention.hub import push_checkpoint, stage_upload


@dataclass
class PushArguments:
    repo_id: str = field(metadata={"help": "namespace/name of the Hub repository (created if missing)"})
    private: bool = field(default=False, metadata={"help": "create the repository private"})
    revision: str | None = field(default=None, metadata={"help": "branch to push to (created if missing)"})
    license: str | None = field(
        default=None, metadata={"help": "Hub licence id of the weights, e.g. apache-2.0, mit, gpl-2.0 (default: none)"}
    )
    commit_message: str = "Upload hf-attention checkpoint"
    dry_run: str | None = field(default=None, metadata={"help": "write the upload folder here; upload nothing"})


def main():
    parser = HfArgumentParser(PushArguments)
    parser.add_argument("checkpoint_dir", help="a folder written by scripts/train.py or scripts/train_accelerate.py")
    args, positional = parser.parse_args_into_dataclasses()
    if args.dry_run is not None:
        folder = stage_upload(
            positional.checkpoint_dir, args.dry_run, args.repo_id, args.revision or "main", license=args.license
        )
        print(f"dry run: the upload folder is {folder}; nothing was uploaded")
        return
    commit = push_checkpoint(
        positional.checkpoint_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        license=args.license,
    )
    print(f"pushed: {commit.commit_url}")


if __name__ == "__main__":
    main()
