"""Interim main job: train a small attentional model to reverse sequences, evaluate, save, and plot its attention.

Reversal is the classic sanity task of attentional seq2seq: target word i must look at source word n-1-i, so a model
that learned to align shows an anti-diagonal heatmap. The German->English main job replaces this script.

    python scripts/demo.py --config configs/demo.yaml [--attention_type scaled_dot] [--max_steps 800] [...]
"""

import json
import string
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import Dataset
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, default_data_collator, set_seed

from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration
from hf_attention.cli import parse_arguments
from hf_attention.plotting import plot_attention

PAD, BOS, EOS = 0, 1, 2
SYMBOLS = list(string.ascii_lowercase)  # token id = 3 + index


@dataclass
class DemoArguments:
    attention_type: str = field(default="bahdanau", metadata={"help": "bahdanau, scaled_dot, dot, general or none"})
    num_train: int = field(default=20000, metadata={"help": "training sequences"})
    num_test: int = field(default=200, metadata={"help": "held-out sequences"})
    min_length: int = 4
    max_length: int = 12
    hidden_size: int = 128
    initializer_range: float = 0.1


def reversal_examples(count: int, min_length: int, max_length: int, seed: int) -> dict[str, list]:
    """Random symbol sequences and their reversal, padded to `max_length` (+1 for the end-of-sequence label)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_length, max_length + 1, (count,), generator=generator)
    columns = {"input_ids": [], "attention_mask": [], "labels": []}
    for length in lengths.tolist():
        source = (torch.randint(0, len(SYMBOLS), (length,), generator=generator) + 3).tolist()
        padding = max_length - length
        columns["input_ids"].append(source + [PAD] * padding)
        columns["attention_mask"].append([1] * length + [0] * padding)
        columns["labels"].append(source[::-1] + [EOS] + [-100] * padding)
    return columns


def main():
    demo_args, training_args = parse_arguments((DemoArguments, Seq2SeqTrainingArguments))
    set_seed(training_args.seed)
    train = Dataset.from_dict(reversal_examples(demo_args.num_train, demo_args.min_length, demo_args.max_length, 0))
    test = reversal_examples(demo_args.num_test, demo_args.min_length, demo_args.max_length, 1)

    config = Seq2SeqAttentionConfig(
        vocab_size=3 + len(SYMBOLS),
        hidden_size=demo_args.hidden_size,
        num_hidden_layers=1,
        num_attention_heads=4,
        attention_type=demo_args.attention_type,
        dropout=0.0,
        initializer_range=demo_args.initializer_range,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        decoder_start_token_id=BOS,
    )
    model = Seq2SeqAttentionForConditionalGeneration(config)
    trainer = Seq2SeqTrainer(model=model, args=training_args, train_dataset=train, data_collator=default_data_collator)
    trainer.train()

    model.eval()
    input_ids = torch.tensor(test["input_ids"])
    attention_mask = torch.tensor(test["attention_mask"])
    with torch.no_grad():
        generated = model.generate(
            input_ids, attention_mask=attention_mask, num_beams=4, max_new_tokens=demo_args.max_length + 1
        )
    correct = 0
    for row, labels in zip(generated[:, 1:].tolist(), test["labels"], strict=True):
        expected = [token for token in labels if token != -100]
        correct += row[: len(expected)] == expected
    accuracy = correct / len(test["labels"])

    output_dir = Path(training_args.output_dir)
    trainer.save_model(output_dir)
    metrics = {"attention_type": demo_args.attention_type, "exact_match": accuracy, "num_test": demo_args.num_test}
    (output_dir / "demo_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics))

    if demo_args.attention_type != "none":
        length = int(attention_mask[0].sum())
        source_ids = input_ids[:1, :length]
        out = model.generate(
            source_ids, max_new_tokens=length + 1, output_attentions=True, return_dict_in_generate=True
        )
        target_ids = out.sequences[0, 1:].tolist()
        # Top layer's weights of each step: [heads, 1, src_len] -> [heads, tgt_len, src_len].
        weights = torch.cat([step[-1][0] for step in out.cross_attentions], dim=1)

        def label(token):
            return "</s>" if token == EOS else SYMBOLS[token - 3] if token >= 3 else str(token)

        path = plot_attention(
            weights,
            [label(t) for t in source_ids[0].tolist()],
            [label(t) for t in target_ids],
            output_dir / "attention.png",
            title=f"{demo_args.attention_type} attention, reversal task",
        )
        print(f"attention heatmap: {path}")


if __name__ == "__main__":
    main()
