"""Translation helpers and transformers' own pipeline on a saved checkpoint (tiny, untrained: equality checks)."""

import os
import subprocess
import sys

import pytest
import torch
from transformers import pipeline

from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration
from hf_attention.tokenization import train_tokenizer
from hf_attention.translation import align, batched, plot_alignment, translate

SENTENCES = ["Ich gehe nach Hause.", "Wie geht es dir?", "Das ist gut.", "Er geht heim!", "Ja."]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    texts = SENTENCES + ["I am going home.", "How are you?", "That is good.", "He goes home!", "Yes."]
    tokenizer = train_tokenizer(texts * 10, vocab_size=80, model_max_length=32)
    config = Seq2SeqAttentionConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, attention_type="bahdanau", dropout=0.0)  # fmt: skip
    model = Seq2SeqAttentionForConditionalGeneration(config)
    model.generation_config.max_length = 12
    path = tmp_path_factory.mktemp("checkpoint")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path, model.eval(), tokenizer


def test_translate_keeps_order_and_matches_one_by_one(checkpoint):
    _, model, tokenizer = checkpoint
    batched_translations = translate(model, tokenizer, SENTENCES, batch_size=2)
    single = [translate(model, tokenizer, [sentence])[0] for sentence in SENTENCES]
    assert batched_translations == single
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        list(batched(range(5), 0))


def test_align_gives_the_weights_of_the_generated_translation(checkpoint, tmp_path):
    _, model, tokenizer = checkpoint
    alignment = align(model, tokenizer, SENTENCES[0])
    assert alignment.translation == translate(model, tokenizer, SENTENCES[:1])[0]
    layers, heads, tgt_len, src_len = alignment.weights.shape
    assert (layers, heads) == (2, 2)
    assert src_len == len(alignment.source_tokens) == len(tokenizer(SENTENCES[0])["input_ids"])
    assert tgt_len == len(alignment.target_tokens)
    torch.testing.assert_close(alignment.weights.sum(-1), torch.ones(layers, heads, tgt_len))
    # The same weights as generate() reports step by step (greedy; the checkpoint's default).
    inputs = tokenizer(SENTENCES[:1], return_tensors="pt")
    out = model.generate(**inputs, output_attentions=True, return_dict_in_generate=True)
    stepwise = torch.cat([step[-1][0] for step in out.cross_attentions], dim=1)  # [heads, steps, src]
    torch.testing.assert_close(alignment.weights[-1][:, : stepwise.shape[1]], stepwise, atol=1e-5, rtol=1e-4)
    path = plot_alignment(alignment, tmp_path / "a.png")
    assert path.stat().st_size > 0


def test_pipeline_translation_with_the_package_imported(checkpoint):
    path, model, tokenizer = checkpoint
    translator = pipeline("translation", model=str(path))
    outputs = translator(SENTENCES[:3])
    assert [output["translation_text"] for output in outputs] == translate(model, tokenizer, SENTENCES[:3])


def test_pipeline_translation_with_remote_code_only(checkpoint):
    path, model, tokenizer = checkpoint
    script = (
        "import sys; sys.modules['hf_attention'] = None\n"
        "from transformers import pipeline\n"
        f"translator = pipeline('translation', model={str(path)!r}, trust_remote_code=True)\n"
        f"print(translator({SENTENCES[0]!r})[0]['translation_text'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == translate(model, tokenizer, SENTENCES[:1])[0]
