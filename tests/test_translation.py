"""Translation helpers and transformers' own pipeline on a saved checkpoint (tiny, untrained: equality checks)."""

import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import pipeline

from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration
from hf_attention.checkpoint_loading import CheckpointError, translation_pipeline
from hf_attention.evaluation import corpus_scores, draw_heatmaps, exact_match
from hf_attention.tokenization import train_tokenizer
from hf_attention.translation import (
    align,
    batched,
    plot_alignment,
    plot_alignments,
    plot_self_attention,
    quantize_int8,
    translate,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
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


def test_align_and_its_figures_cover_the_self_attention_of_both_stacks(checkpoint, tmp_path):
    _, _, tokenizer = checkpoint
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, encoder_layer_types=["self_attention", "rnn"],
                                    decoder_layer_types=["rnn", "self_attention"])  # fmt: skip
    model = Seq2SeqAttentionForConditionalGeneration(config).eval()
    model.generation_config.max_length = 8
    alignment = align(model, tokenizer, SENTENCES[1])
    inputs = tokenizer(SENTENCES[1:2], return_tensors="pt")
    labels = torch.tensor([tokenizer.convert_tokens_to_ids(alignment.target_tokens)])
    expected = model(**inputs, labels=labels, output_attentions=True)
    src_len, tgt_len = len(alignment.source_tokens), len(alignment.target_tokens)
    assert alignment.encoder_self_attention.shape == (1, 2, src_len, src_len)
    torch.testing.assert_close(alignment.encoder_self_attention[0], expected.encoder_attentions[0][0])
    assert alignment.decoder_self_attention.shape == (1, 2, tgt_len, tgt_len)
    torch.testing.assert_close(alignment.decoder_self_attention[0], expected.decoder_attentions[0][0])
    assert (alignment.decoder_self_attention.triu(diagonal=1) == 0).all()  # causal
    paths = plot_alignments(alignment, tmp_path / "attention.png")
    names = ["attention_cross_layer0.png", "attention.png", "attention_encoder_self_attention_0.png",
             "attention_decoder_self_attention_0.png"]  # fmt: skip
    assert [path.name for path in paths] == names
    assert all(path.stat().st_size > 0 for path in paths)
    heatmaps = draw_heatmaps(model, tokenizer, SENTENCES[1:2], tmp_path, "example_")
    assert [Path(path).name for path in heatmaps[0]["self_attention_paths"]] == [
        "example_0_encoder_self_attention_0.png",
        "example_0_decoder_self_attention_0.png",
    ]
    with pytest.raises(ValueError, match="stack='target': use 'encoder' or 'decoder'"):
        plot_self_attention(alignment, tmp_path / "x.png", 0, stack="target")

    _, rnn_model, _ = checkpoint
    rnn_alignment = align(rnn_model, tokenizer, SENTENCES[1])
    assert rnn_alignment.encoder_self_attention is None and rnn_alignment.decoder_self_attention is None
    with pytest.raises(ValueError, match="decoder has no self-attention layer"):
        plot_self_attention(rnn_alignment, tmp_path / "x.png", 0, stack="decoder")
    assert [path.name for path in plot_alignments(rnn_alignment, tmp_path / "rnn.png")] == [
        "rnn_cross_layer0.png",
        "rnn.png",
    ]


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


LONG = " ".join(SENTENCES) * 20  # far over the checkpoint tokenizer's 32 tokens


def test_pipeline_warns_about_each_input_it_truncates(checkpoint, caplog):
    path, model, tokenizer = checkpoint
    translator = translation_pipeline(path)
    with caplog.at_level(logging.WARNING, logger="hf_attention.pipeline_seq2seq_attention"):
        outputs = translator([SENTENCES[0], LONG, SENTENCES[1]])
    warnings = [record.getMessage() for record in caplog.records if record.name.endswith("pipeline_seq2seq_attention")]
    length = len(tokenizer(LONG)["input_ids"])
    assert warnings == [
        f"the input {LONG[:50]!r}... has {length} tokens, more than the tokenizer's model_max_length of 32: only "
        "its first 32 tokens are translated"
    ]
    assert [output["translation_text"] for output in outputs] == translate(model, tokenizer, SENTENCES[:1] + [LONG]
                                                                            + SENTENCES[1:2])  # fmt: skip


def test_pipeline_of_an_edited_checkpoint_is_refused(checkpoint, tmp_path):
    path, _, _ = checkpoint
    edited = tmp_path / "edited"
    shutil.copytree(path, edited)
    config = json.loads((edited / "config.json").read_text())
    (edited / "config.json").write_text(json.dumps({**config, "encoder_layer_types": ["self_attention", "rnn"]}))
    with pytest.raises(ValueError, match="encoder_layer_types=\\['self_attention', 'rnn'\\], but the weights were"):
        pipeline("translation", model=str(edited))
    with pytest.raises(CheckpointError, match="encoder_layer_types"):
        translation_pipeline(edited)


def truncation_warnings(caplog):
    return [record.getMessage() for record in caplog.records if record.name == "hf_attention.translation"]


def test_translate_warns_about_each_input_it_truncates(checkpoint, caplog):
    _, model, tokenizer = checkpoint
    length = len(tokenizer(LONG)["input_ids"])
    assert length > tokenizer.model_max_length == 32
    with caplog.at_level(logging.WARNING, logger="hf_attention.translation"):
        translations = translate(model, tokenizer, [SENTENCES[0], LONG, SENTENCES[1], LONG[:-30]], batch_size=2)
    assert translations[0] == translate(model, tokenizer, SENTENCES[:1])[0]
    shorter = len(tokenizer(LONG[:-30])["input_ids"])
    assert truncation_warnings(caplog) == [
        f"sentence 1 has {length} tokens, more than the tokenizer's model_max_length of 32: only its first 32 "
        "tokens are translated",
        f"sentence 3 has {shorter} tokens, more than the tokenizer's model_max_length of 32: only its first 32 "
        "tokens are translated",
    ]
    # What is translated is the truncated input, as the warning says.
    kept = tokenizer([LONG], truncation=True, return_tensors="pt")
    assert kept["input_ids"].shape[1] == 32
    expected = tokenizer.batch_decode(model.generate(**kept), skip_special_tokens=True)[0]
    assert translations[1] == expected


def test_inputs_within_the_limit_give_no_warning(checkpoint, caplog):
    _, model, tokenizer = checkpoint
    exact = tokenizer.decode(tokenizer(LONG, truncation=True)["input_ids"][:-1], skip_special_tokens=True)
    assert len(tokenizer(exact)["input_ids"]) <= 32
    with caplog.at_level(logging.WARNING, logger="hf_attention.translation"):
        translate(model, tokenizer, [*SENTENCES, exact])
        align(model, tokenizer, SENTENCES[0])
    assert truncation_warnings(caplog) == []


def test_align_warns_when_it_truncates(checkpoint, caplog):
    _, model, tokenizer = checkpoint
    with caplog.at_level(logging.WARNING, logger="hf_attention.translation"):
        alignment = align(model, tokenizer, LONG)
    assert len(alignment.source_tokens) == 32
    (message,) = truncation_warnings(caplog)
    assert message.startswith(f"sentence 0 has {len(tokenizer(LONG)['input_ids'])} tokens, more than")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"num_beams": 0}, "num_beams=0: expected a whole number >= 1"),
        ({"num_beams": -1}, "num_beams=-1: expected a whole number >= 1"),
        ({"max_new_tokens": 0}, "max_new_tokens=0: expected a whole number >= 1"),
        ({"num_beams": 2.5}, "num_beams=2.5: expected a whole number >= 1"),
    ],
)
def test_bad_generation_settings_are_refused_before_generating(checkpoint, settings, message):
    _, model, tokenizer = checkpoint
    with pytest.raises(ValueError, match=re.escape(message)):
        translate(model, tokenizer, SENTENCES, **settings)
    with pytest.raises(ValueError, match=re.escape(message)):
        align(model, tokenizer, SENTENCES[0], **settings)


def load_translate_script():
    spec = importlib.util.spec_from_file_location("translate_script", REPO_ROOT / "scripts" / "translate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_translate_main(capsys, *arguments):
    """`scripts/translate.py`'s main in this process: (exit code, stdout lines, stderr lines)."""
    try:
        load_translate_script().main(list(arguments))
        code = 0
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--num_beams", "0"], "--num_beams 0: expected a whole number >= 1"),
        (["--num_beams", "-1"], "--num_beams -1: expected a whole number >= 1"),
        (["--max_new_tokens", "0"], "--max_new_tokens 0: expected a whole number >= 1"),
        (["--batch_size", "0"], "--batch_size 0: expected a whole number >= 1"),
        (["--quantize", "int4"], "--quantize int4: expected int8, or leave it out for the float model"),
        (["--quantize", "int8", "--device", "cuda"], "--quantize int8 runs on CPUs only: pass --device cpu"),
        (["--quantize", "int8", "--bf16", "true"], "--quantize int8 and --bf16 true exclude each other"),
    ],
)
def test_translate_script_refuses_bad_settings(checkpoint, capsys, arguments, message):
    path, _, _ = checkpoint
    code, out, err = run_translate_main(capsys, "--model", str(path), *arguments, SENTENCES[0])
    assert code == 2 and out == []
    assert len(err) == 1 and err[0].startswith("translate.py: error: " + message), err


def test_translate_script_names_a_missing_file_or_a_damaged_tokenizer(checkpoint, capsys, tmp_path):
    path, model, tokenizer = checkpoint
    missing = tmp_path / "missing.txt"
    code, out, err = run_translate_main(capsys, "--model", str(path), "--file", str(missing))
    assert (code, out, err) == (2, [], [f"translate.py: error: --file {missing}: no such file"])
    code, out, err = run_translate_main(capsys, "--model", str(tmp_path / "nothing"), SENTENCES[0])
    assert (code, out, err) == (
        2,
        [],
        [f"translate.py: error: --model {tmp_path / 'nothing'}: no such checkpoint folder"],
    )
    damaged = tmp_path / "damaged"
    shutil.copytree(path, damaged)
    (damaged / "tokenizer.json").write_text("{", encoding="utf-8")
    code, out, err = run_translate_main(capsys, "--model", str(damaged), SENTENCES[0])
    assert code == 1 and out == [] and len(err) == 1
    assert err[0].startswith(f"translate.py: error: {damaged / 'tokenizer.json'}: not a readable tokenizer file")
    # Settings within the limits still translate, the file's lines in order.
    lines = tmp_path / "sentences.txt"
    lines.write_text("\n".join(SENTENCES[:2]) + "\n", encoding="utf-8")
    code, out, _ = run_translate_main(capsys, "--model", str(path), "--file", str(lines), "--num_beams", "1")
    assert (code, out) == (0, translate(model, tokenizer, SENTENCES[:2], num_beams=1))


def test_translate_script_warns_about_a_long_line(checkpoint, tmp_path):
    path, _, tokenizer = checkpoint
    lines = tmp_path / "sentences.txt"
    lines.write_text(f"{SENTENCES[0]}\n{LONG}\n", encoding="utf-8")
    command = [sys.executable, str(REPO_ROOT / "scripts" / "translate.py"), "--model", str(path), "--file", str(lines)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.splitlines()) == 2
    length = len(tokenizer(LONG)["input_ids"])
    assert f"sentence 1 has {length} tokens, more than the tokenizer's model_max_length of 32" in result.stderr
    missing = subprocess.run([*command[:-1], str(tmp_path / "nope.txt")], capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert (
        missing.stderr.strip().splitlines()[-1] == f"translate.py: error: --file {tmp_path / 'nope.txt'}: no such file"
    )


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_quantize_int8_replaces_every_linear_and_rnn_layer_and_keeps_the_logits(rnn_type):
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    rnn_type=rnn_type, dropout=0.0)  # fmt: skip
    model = Seq2SeqAttentionForConditionalGeneration(config).eval()
    quantized = quantize_int8(model)
    float_layers = (torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU)
    dynamic = torch.ao.nn.quantized.dynamic
    assert not [name for name, module in quantized.named_modules() if type(module) in float_layers]
    linear_names = {name for name, module in model.named_modules() if type(module) is torch.nn.Linear}
    rnn_names = {name for name, module in model.named_modules() if type(module) in (torch.nn.LSTM, torch.nn.GRU)}
    assert linear_names == {name for name, module in quantized.named_modules() if type(module) is dynamic.Linear}
    assert rnn_names == {
        name for name, module in quantized.named_modules() if type(module) in (dynamic.LSTM, dynamic.GRU)
    }
    assert {type(module) for name, module in model.named_modules() if name in rnn_names} <= set(float_layers)

    source = torch.randint(3, 60, (3, 7))
    target = torch.randint(3, 60, (3, 5))
    with torch.no_grad():
        reference = model(input_ids=source, decoder_input_ids=target).logits
        logits = quantized(input_ids=source, decoder_input_ids=target).logits
    # int8 weights: a small fraction of the logits' spread away from the float ones, but not equal to them.
    assert 0 < (logits - reference).abs().max() < 0.2 * reference.std()
    # Cached decoding carries the int8 RNN's state as it carries the float one's.
    settings = {"max_new_tokens": 6, "min_new_tokens": 6, "num_beams": 3}
    torch.testing.assert_close(quantized.generate(source, use_cache=True, **settings),
                               quantized.generate(source, use_cache=False, **settings))  # fmt: skip


def test_translate_script_quantized_gives_the_quantized_models_translations(checkpoint, capsys):
    path, model, tokenizer = checkpoint
    code, out, _ = run_translate_main(capsys, "--model", str(path), "--quantize", "int8", *SENTENCES[:3])
    assert (code, out) == (0, translate(quantize_int8(model), tokenizer, SENTENCES[:3]))


def test_translate_script_bf16_gives_the_translations_under_bf16_autocast(checkpoint, capsys):
    path, model, tokenizer = checkpoint
    code, out, _ = run_translate_main(capsys, "--model", str(path), "--bf16", "true", *SENTENCES)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = translate(model, tokenizer, SENTENCES)
    assert (code, out) == (0, expected)


def test_functions_taking_sentences_refuse_a_bare_string(checkpoint, tmp_path):
    _, model, tokenizer = checkpoint
    with pytest.raises(TypeError, match=r"sentences is one str \('Ich gehe nach Hause.'\); pass a list of sentences"):
        translate(model, tokenizer, SENTENCES[0])
    with pytest.raises(TypeError, match=r"sentences\[1\] is int"):
        translate(model, tokenizer, [SENTENCES[0], 7])
    with pytest.raises(TypeError, match="align takes one sentence"):
        align(model, tokenizer, SENTENCES[:2])
    with pytest.raises(TypeError, match="hypotheses is one str"):
        corpus_scores("a b c", ["a b c"])
    with pytest.raises(TypeError, match="references is one str"):
        exact_match(["a"], "a")
    with pytest.raises(TypeError, match="sentences is one str"):
        draw_heatmaps(model, tokenizer, SENTENCES[0], tmp_path, prefix="x")
    assert translate(model, tokenizer, []) == []
    assert translate(model, tokenizer, (sentence for sentence in SENTENCES[:2])) == translate(
        model, tokenizer, SENTENCES[:2]
    )


@pytest.mark.parametrize("source", ["stdin", "file"])
def test_translate_script_prints_nothing_for_empty_input(checkpoint, tmp_path, source):
    path, _, _ = checkpoint
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    command = [sys.executable, str(REPO_ROOT / "scripts" / "translate.py"), "--model", str(path)]
    command += ["--file", str(empty)] if source == "file" else []
    result = subprocess.run(
        command, input="", capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert (result.returncode, result.stdout) == (0, ""), result.stderr[-2000:]


def test_translate_script_reads_a_file_as_written_and_names_a_line_that_is_not_utf8(checkpoint, capsys, tmp_path):
    path, model, tokenizer = checkpoint
    marked = tmp_path / "marked.txt"
    marked.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(SENTENCES[:2]).encode() + b"\r\n")
    code, out, _ = run_translate_main(capsys, "--model", str(path), "--file", str(marked))
    assert (code, out) == (0, translate(model, tokenizer, SENTENCES[:2]))
    latin = tmp_path / "latin.txt"
    latin.write_bytes(SENTENCES[0].encode() + b"\nSch\xf6n.\n")
    code, out, err = run_translate_main(capsys, "--model", str(path), "--file", str(latin))
    assert (code, out, err) == (2, [], [f"translate.py: error: --file {latin}: line 2 is not UTF-8 text (invalid "
                                        "start byte)"])  # fmt: skip
