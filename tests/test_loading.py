"""hf_attention.loading: the models the presets build and the generation defaults a checkpoint is saved with."""

from pathlib import Path

import pytest
from transformers import GenerationConfig

from hf_attention.arguments import DataArguments, ModelArguments, TranslationTrainingArguments
from hf_attention.cli import parse_arguments
from hf_attention.loading import build_model, set_generation_defaults
from hf_attention.tokenization import train_tokenizer

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_length_penalty_is_set_when_given_and_kept_otherwise(tmp_path):
    training = TranslationTrainingArguments(output_dir=str(tmp_path), report_to=[], generation_num_beams=4)
    kept = GenerationConfig(num_beams=3, length_penalty=0.7)
    set_generation_defaults(kept, training, DataArguments(max_target_length=20))
    assert (kept.num_beams, kept.length_penalty, kept.max_new_tokens) == (4, 0.7, 20)
    chosen = GenerationConfig(length_penalty=0.7)
    set_generation_defaults(chosen, training, DataArguments(length_penalty=1.2))
    assert chosen.length_penalty == 1.2


@pytest.mark.parametrize(
    ("preset", "encoder_layer_types", "decoder_layer_types"),
    [("hybrid.yaml", ["self_attention"], ["rnn"]), ("transformer.yaml", ["self_attention"], ["self_attention"])],
)
def test_the_self_attention_presets_build_their_layers_at_the_base_size(
    tmp_path, preset, encoder_layer_types, decoder_layer_types
):
    """configs/hybrid.yaml and configs/transformer.yaml: their layer types reach the model, at the base preset's
    parameter count (within 10%)."""
    tokenizer = train_tokenizer(["ein kleiner satz", "a small sentence"] * 50, vocab_size=200, model_max_length=64)
    sizes = {}
    for presets in (["base.yaml"], ["base.yaml", preset]):
        model_args, _, _ = parse_arguments(
            (ModelArguments, DataArguments, TranslationTrainingArguments),
            [
                "--config",
                *(str(CONFIGS / name) for name in presets),
                "--output_dir",
                str(tmp_path),
                "--vocab_size",
                "4000",
            ],
        )
        model = build_model(model_args, tokenizer)
        embedding_parameters = model.get_input_embeddings().weight.numel()
        # Sized as the default 4000-word vocabulary would make it; this tokenizer is smaller.
        sizes[presets[-1]] = model.num_parameters() - embedding_parameters + 4000 * model.config.hidden_size
    config = model.config
    assert (config.encoder_layer_types, config.decoder_layer_types) == (encoder_layer_types, decoder_layer_types)
    assert config.self_attention_type == "bahdanau"
    assert type(model.model.encoder.layers[0]).__name__ == "Seq2SeqAttentionSelfAttentionLayer"
    decoder_layer = type(model.model.decoder.layers[0]).__name__
    assert (decoder_layer == "Seq2SeqAttentionSelfAttentionLayer") == (decoder_layer_types == ["self_attention"])
    assert abs(sizes[preset] / sizes["base.yaml"] - 1) < 0.1
