"""hf_attention.loading: the generation defaults a trained checkpoint is saved with."""

from transformers import GenerationConfig

from hf_attention.arguments import DataArguments, TranslationTrainingArguments
from hf_attention.loading import set_generation_defaults


def test_length_penalty_is_set_when_given_and_kept_otherwise(tmp_path):
    training = TranslationTrainingArguments(output_dir=str(tmp_path), report_to=[], generation_num_beams=4)
    kept = GenerationConfig(num_beams=3, length_penalty=0.7)
    set_generation_defaults(kept, training, DataArguments(max_target_length=20))
    assert (kept.num_beams, kept.length_penalty, kept.max_new_tokens) == (4, 0.7, 20)
    chosen = GenerationConfig(length_penalty=0.7)
    set_generation_defaults(chosen, training, DataArguments(length_penalty=1.2))
    assert chosen.length_penalty == 1.2
