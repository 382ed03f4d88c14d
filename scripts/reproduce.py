"""What attention is for: quality against source length, and the alignments, for several attention types.

Trains `none`, `bahdanau` and `scaled_dot` with the same preset (or reuses checkpoints), scores each on the test split
bucketed by source length, and writes into `--output_dir`: `length_comparison.json`, `{metric}_by_length.png` (one
line per attention type, as Figure 2 of Bahdanau et al. 2015), `alignment_by_length.png` on tasks with a gold
alignment, and `heatmaps/{type}_{k}.png` (as their Figure 3).

    # German->English at the main job's budget, reusing trained checkpoints:
    python scripts/reproduce.py --config configs/reproduce_ding.yaml \\
        --checkpoints none=outputs/table_none bahdanau=outputs/table_bahdanau scaled_dot=outputs/table_scaled_dot
    # Long reversal (4 to 60 letters, gold alignment known), training all three:
    python scripts/reproduce.py --config configs/reproduce_long.yaml

The preset's training arguments (ModelArguments, DataArguments, Seq2SeqTrainingArguments of scripts/train.py) apply
to every model trained here; models go to `--output_dir/{type}`. The comparison's own arguments are
`hf_attention.analysis.ComparisonArguments` (--attention_types, --checkpoints, --bucket_edges, --min_bucket_size,
--plot_metric, --heatmap_sentences, --heatmap_count, --max_test_samples).
"""

import logging

import datasets
import transformers
from transformers import Seq2SeqTrainingArguments

from hf_attention.analysis import ComparisonArguments, compare_attention_types, report_tables
from hf_attention.cli import parse_arguments
from hf_attention.training import DataArguments, ModelArguments


def main():
    comparison_args, model_args, data_args, training_args = parse_arguments(
        (ComparisonArguments, ModelArguments, DataArguments, Seq2SeqTrainingArguments)
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    log_level = training_args.get_process_log_level()
    logging.getLogger("hf_attention").setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    report = compare_attention_types(comparison_args, model_args, data_args, training_args)
    print(report_tables(report))


if __name__ == "__main__":
    main()
