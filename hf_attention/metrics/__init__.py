"""Translation metrics through `evaluate`, loaded from this package by path (no Hub download)."""

from pathlib import Path

import evaluate

SACREBLEU_SCORES_PATH = Path(__file__).with_name("sacrebleu_scores.py")


def load_translation_metric(**kwargs) -> evaluate.EvaluationModule:
    """sacreBLEU corpus BLEU and chrF as an `evaluate` module; `kwargs` go to `evaluate.load`."""
    return evaluate.load(str(SACREBLEU_SCORES_PATH), **kwargs)


__all__ = ["SACREBLEU_SCORES_PATH", "load_translation_metric"]
