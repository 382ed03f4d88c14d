"""What attention is for: quality against source length, and the alignments, for several attention types (and, with
--encoder_types rnn self_attention transformer, each with RNN layers, with a self-attention encoder under the RNN
decoder, and with self-attention on both sides).

Trains `none`, `bahdanau` and `scaled_dot` with the same preset (or reuses checkpoints), scores each on the test split
bucketed by source length, and writes into `--output_dir`: `length_comparison.json`, `{metric}_by_length.png` (one
line per attention type, as Figure 2 of Bahdanau et al. 2015), `alignment_by_length.png` on tasks with a gold
alignment, and `heatmaps/{type}_{k}.png` (as their Figure 3).

    # German->English at the main job's budget, reusing trained checkpoints:
    python scripts/reproduce.py --config configs/base.yaml configs/reproduce_ding.yaml \\
        --checkpoints none=outputs/table_none bahdanau=outputs/table_bahdanau scaled_dot=outputs/table_scaled_dot
    # Long reversal (4 to 60 letters, gold alignment known), training all three:
    python scripts/reproduce.py --config configs/base.yaml configs/reproduce_long.yaml
    # Encoder-decoder types: bahdanau and scaled_dot, each as RNN, hybrid and Transformer:
    python scripts/reproduce.py --config configs/base.yaml configs/reproduce_ding.yaml \
        --attention_types bahdanau scaled_dot --encoder_types rnn self_attention transformer

The preset's training arguments (ModelArguments, DataArguments, TranslationTrainingArguments of scripts/train.py) apply
to every model trained here; models go to `--output_dir/{name}` (the attention type, plus `-self_attention` or
`-transformer`). The comparison's own arguments are `hf_attention.comparison.ComparisonArguments` (--attention_types,
--encoder_types, --checkpoints, --bucket_edges, --min_bucket_size, --plot_metric, --heatmap_sentences,
--heatmap_count, --max_test_samples).
"""

from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.cli import parse_arguments, setup_logging
from hf_attention.comparison import ComparisonArguments, compare_attention_types, report_tables


def main():
    comparison_args, model_args, data_args, training_args = parse_arguments(
        (ComparisonArguments, ModelArguments, DataArguments, TranslationTrainingArguments)
    )
    setup_logging(training_args)
    report = compare_attention_types(comparison_args, model_args, data_args, training_args)
    print(report_tables(report))


if __name__ == "__main__":
    main()
