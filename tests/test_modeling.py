"""The encoder-decoder: outputs, padding, causality, loss, caching, generation, saving and loading, bad input."""

import gc
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import weakref
from unittest import mock

import pytest
import torch
from torch import nn
from transformers import AutoModel, AutoModelForSeq2SeqLM
from transformers.cache_utils import DynamicLayer

from hf_attention import (
    ATTENTION_TYPES,
    Seq2SeqAttentionCache,
    Seq2SeqAttentionConfig,
    Seq2SeqAttentionForConditionalGeneration,
    Seq2SeqAttentionModel,
    shift_tokens_right,
)
from hf_attention.modeling_seq2seq_attention import CACHE_OUTPUT_FIELD, drop_words, sinusoidal_positions

VOCAB, HIDDEN, LAYERS, HEADS = 40, 16, 2, 4
ALL_VARIANTS = [(attention_type, rnn_type) for attention_type in ATTENTION_TYPES for rnn_type in ("gru", "lstm")]
# Encoder layer mixes beside the all-RNN default: a Transformer encoder, a hybrid each way round.
ENCODER_MIXES = [["self_attention", "self_attention"], ["self_attention", "rnn"], ["rnn", "self_attention"]]
# Decoder layer mixes beside the all-RNN default: a Transformer decoder, a hybrid each way round.
DECODER_MIXES = [["self_attention", "self_attention"], ["rnn", "self_attention"], ["self_attention", "rnn"]]
# (encoder_layer_types, decoder_layer_types): the RNN model, each encoder mix, each decoder mix over self-attention.
LAYER_MIXES = (
    [(None, None)] + [(mix, None) for mix in ENCODER_MIXES] + [(ENCODER_MIXES[0], mix) for mix in DECODER_MIXES]
)


def make_model(attention_type="bahdanau", rnn_type="gru", **kwargs) -> Seq2SeqAttentionForConditionalGeneration:
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        attention_type=attention_type,
        rnn_type=rnn_type,
        **kwargs,
    )
    return Seq2SeqAttentionForConditionalGeneration(config).eval()


def batch(seed=0, batch_size=3, src_len=7, tgt_len=5):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, VOCAB, (batch_size, src_len), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0
    input_ids[1, 5:] = 0
    labels = torch.randint(3, VOCAB, (batch_size, tgt_len), generator=generator)
    return input_ids, attention_mask, labels


@pytest.mark.parametrize(("attention_type", "rnn_type"), ALL_VARIANTS)
def test_output_shapes(attention_type, rnn_type):
    model = make_model(attention_type, rnn_type)
    input_ids, attention_mask, labels = batch()
    out = model(
        input_ids, attention_mask=attention_mask, labels=labels, output_attentions=True, output_hidden_states=True
    )
    assert out.logits.shape == (3, 5, VOCAB)
    assert len(out.encoder_hidden_states) == LAYERS + 1 and len(out.decoder_hidden_states) == LAYERS + 1
    assert all(h.shape == (3, 7, HIDDEN) for h in out.encoder_hidden_states)
    assert all(h.shape == (3, 5, HIDDEN) for h in out.decoder_hidden_states)
    assert out.encoder_attentions is None and out.decoder_attentions is None
    if attention_type == "none":
        assert out.cross_attentions is None
    else:
        assert len(out.cross_attentions) == LAYERS
        assert all(a.shape == (3, HEADS, 5, 7) for a in out.cross_attentions)
        assert all(torch.equal(a[1, :, :, 5:], torch.zeros(HEADS, 5, 2)) for a in out.cross_attentions)


def test_tuple_outputs_with_return_dict_false():
    model = make_model()
    input_ids, attention_mask, labels = batch()
    as_dict = model(input_ids, attention_mask=attention_mask, labels=labels)
    as_tuple = model(input_ids, attention_mask=attention_mask, labels=labels, return_dict=False)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], as_dict.loss)
    torch.testing.assert_close(as_tuple[1], as_dict.logits)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_encoder_ignores_padding_on_either_side(rnn_type):
    model = make_model("scaled_dot", rnn_type)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, VOCAB, (1, 5), generator=generator)
    pad = torch.zeros(1, 3, dtype=torch.long)
    reference = model.model.encoder(ids).last_hidden_state
    right = model.model.encoder(torch.cat([ids, pad], 1), attention_mask=torch.tensor([[1] * 5 + [0] * 3]))
    left = model.model.encoder(torch.cat([pad, ids], 1), attention_mask=torch.tensor([[0] * 3 + [1] * 5]))
    torch.testing.assert_close(right.last_hidden_state[:, :5], reference)
    torch.testing.assert_close(left.last_hidden_state[:, 3:], reference)
    assert torch.equal(right.last_hidden_state[:, 5:], torch.zeros(1, 3, HIDDEN))
    # And the decoder's predictions do not change either.
    labels = torch.randint(3, VOCAB, (1, 4), generator=generator)
    expected = model(ids, labels=labels).logits
    padded = model(torch.cat([pad, ids], 1), attention_mask=torch.tensor([[0] * 3 + [1] * 5]), labels=labels).logits
    torch.testing.assert_close(padded, expected)


@pytest.mark.parametrize(("encoder_layer_types", "decoder_layer_types"), LAYER_MIXES)
def test_all_padding_source_gives_no_nan(encoder_layer_types, decoder_layer_types):
    model = make_model(encoder_layer_types=encoder_layer_types, decoder_layer_types=decoder_layer_types)
    input_ids, attention_mask, labels = batch()
    attention_mask[0] = 0
    out = model(input_ids, attention_mask=attention_mask, labels=labels, output_attentions=True)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    assert all(
        torch.equal(a[0], torch.zeros_like(a[0])) for a in out.cross_attentions + (out.encoder_attentions or ())
    )
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    ("attention_type", "decoder_layer_types"),
    [(name, None) for name in ATTENTION_TYPES]
    + [(name, mix) for name in ("bahdanau", "dot") for mix in DECODER_MIXES],
)
def test_decoder_is_causal(attention_type, decoder_layer_types):
    model = make_model(attention_type, decoder_layer_types=decoder_layer_types)
    input_ids, attention_mask, _ = batch()
    decoder_input_ids = torch.randint(3, VOCAB, (3, 6), generator=torch.Generator().manual_seed(2))
    changed = decoder_input_ids.clone()
    changed[:, 3] = (changed[:, 3] + 1) % VOCAB
    logits = model(input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids).logits
    logits_changed = model(input_ids, attention_mask=attention_mask, decoder_input_ids=changed).logits
    torch.testing.assert_close(logits[:, :3], logits_changed[:, :3])
    assert not torch.allclose(logits[:, 3:], logits_changed[:, 3:])


@pytest.mark.parametrize(
    ("attention_type", "rnn_type", "decoder_layer_types"),
    [(*variant, None) for variant in ALL_VARIANTS]
    + [(name, "lstm", mix) for name in ("bahdanau", "scaled_dot", "general") for mix in DECODER_MIXES],
)
def test_step_by_step_decoding_with_cache_equals_teacher_forcing(attention_type, rnn_type, decoder_layer_types):
    model = make_model(attention_type, rnn_type, decoder_layer_types=decoder_layer_types)
    input_ids, attention_mask, _ = batch()
    decoder_input_ids = torch.randint(3, VOCAB, (3, 6), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full = model(
            input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            use_cache=False,
            output_attentions=True,
        )
        encoder_outputs = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
        cache, step_logits, step_attentions, step_self_attentions = None, [], [], []
        for position in range(6):
            out = model(
                encoder_outputs=encoder_outputs,
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids[:, position : position + 1],
                past_key_values=cache,
                use_cache=True,
                output_attentions=True,
            )
            cache = out.past_key_values
            step_logits.append(out.logits)
            step_attentions.append(out.cross_attentions)
            step_self_attentions.append(out.decoder_attentions)
    assert isinstance(cache, Seq2SeqAttentionCache) and cache.get_seq_length() == 6
    torch.testing.assert_close(torch.cat(step_logits, dim=1), full.logits, atol=1e-5, rtol=1e-5)
    if attention_type != "none":
        for layer in range(LAYERS):
            stepped = torch.cat([step[layer] for step in step_attentions], dim=2)
            torch.testing.assert_close(stepped, full.cross_attentions[layer], atol=1e-5, rtol=1e-5)
    if decoder_layer_types is None:
        assert full.decoder_attentions is None and all(step is None for step in step_self_attentions)
        return
    # Step t attends to the t + 1 positions so far: row t of the teacher-forced weights, which are 0 beyond it.
    assert len(full.decoder_attentions) == decoder_layer_types.count("self_attention")
    for index, weights in enumerate(full.decoder_attentions):
        assert weights.shape == (3, HEADS, 6, 6) and torch.all(weights.triu(diagonal=1) == 0)
        for position, step in enumerate(step_self_attentions):
            assert step[index].shape == (3, HEADS, 1, position + 1)
            torch.testing.assert_close(step[index][:, :, 0], weights[:, :, position, : position + 1])


def test_training_runs_each_rnn_once_per_layer_not_once_per_position():
    """The teacher-forced pass has no Python loop over target positions: every RNN module (two encoder directions and
    one decoder RNN per layer) runs exactly once."""
    model = make_model().train()
    input_ids, attention_mask, labels = batch(tgt_len=9)
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in model.modules() if isinstance(m, nn.GRU)]
    model(input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
    for hook in hooks:
        hook.remove()
    assert len(calls) == 3 * LAYERS


def test_loss_is_token_cross_entropy_ignoring_minus_100():
    model = make_model()
    input_ids, attention_mask, labels = batch()
    labels[0, 3:] = -100
    out = model(input_ids, attention_mask=attention_mask, labels=labels)
    expected = nn.functional.cross_entropy(out.logits.reshape(-1, VOCAB), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, expected)
    decoder_input_ids = shift_tokens_right(labels, model.config.pad_token_id, model.config.decoder_start_token_id)
    assert decoder_input_ids[:, 0].eq(model.config.decoder_start_token_id).all()
    assert decoder_input_ids[0, 4].item() == model.config.pad_token_id  # -100 became padding
    explicit = model(input_ids, attention_mask=attention_mask, labels=labels, decoder_input_ids=decoder_input_ids)
    torch.testing.assert_close(explicit.loss, out.loss)


def test_loss_with_num_items_in_batch_adds_up_across_processes():
    """What the Trainer does on 2 processes: each half divides its summed loss by the global token count."""
    model = make_model()
    input_ids, attention_mask, labels = batch(batch_size=4)
    labels[1, 2:] = -100
    full = model(input_ids, attention_mask=attention_mask, labels=labels).loss
    total = (labels != -100).sum()
    halves = [
        model(input_ids[part], attention_mask=attention_mask[part], labels=labels[part], num_items_in_batch=total).loss
        for part in (slice(0, 2), slice(2, 4))
    ]
    torch.testing.assert_close(halves[0] + halves[1], full)


@pytest.mark.parametrize(
    ("attention_type", "encoder_layer_types", "decoder_layer_types"),
    [
        (name, *layers)
        for name in ("bahdanau", "scaled_dot", "none")
        for layers in LAYER_MIXES
        if name != "none" or layers[1] is None  # a self-attention decoder layer needs cross attention
    ],
)
@pytest.mark.parametrize("num_beams", [1, 4])
def test_generate_with_and_without_cache_give_the_same_tokens(
    attention_type, num_beams, encoder_layer_types, decoder_layer_types
):
    model = make_model(
        attention_type,
        encoder_layer_types=encoder_layer_types,
        decoder_layer_types=decoder_layer_types,
        self_attention_type="scaled_dot",
    )
    input_ids, attention_mask, _ = batch()
    kwargs = dict(attention_mask=attention_mask, num_beams=num_beams, max_new_tokens=8, min_new_tokens=8)
    with_cache = model.generate(input_ids, use_cache=True, **kwargs)
    without_cache = model.generate(input_ids, use_cache=False, **kwargs)
    assert with_cache.shape == (3, 9)
    assert torch.equal(with_cache, without_cache)


def test_sampling_generation_is_seeded_and_batched():
    model = make_model()
    input_ids, attention_mask, _ = batch()
    torch.manual_seed(5)
    first = model.generate(input_ids, attention_mask=attention_mask, do_sample=True, max_new_tokens=6)
    torch.manual_seed(5)
    second = model.generate(input_ids, attention_mask=attention_mask, do_sample=True, max_new_tokens=6)
    assert torch.equal(first, second) and first.shape[0] == 3


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_returns_cross_attention_of_every_step(num_beams):
    model = make_model("bahdanau")
    input_ids, attention_mask, _ = batch()
    out = model.generate(
        input_ids,
        attention_mask=attention_mask,
        num_beams=num_beams,
        max_new_tokens=5,
        min_new_tokens=5,
        output_attentions=True,
        return_dict_in_generate=True,
    )
    assert len(out.cross_attentions) == 5
    for step in out.cross_attentions:
        assert len(step) == LAYERS
        for weights in step:
            assert weights.shape == (3 * num_beams, HEADS, 1, 7)
            torch.testing.assert_close(weights.sum(-1), torch.ones(3 * num_beams, HEADS, 1))
            assert torch.equal(weights.view(3, num_beams, HEADS, 7)[1, ..., 5:], torch.zeros(num_beams, HEADS, 2))


def test_cache_reorders_selects_and_repeats_along_the_batch():
    model = make_model("scaled_dot", "lstm")
    input_ids, attention_mask, _ = batch()
    out = model(
        input_ids, attention_mask=attention_mask, decoder_input_ids=torch.ones(3, 2, dtype=torch.long), use_cache=True
    )
    cache = out.past_key_values
    layer = cache.layers[0]
    assert layer.rnn_state.shape == (3, 2, HIDDEN) and layer.keys.shape == (3, HEADS, 7, HIDDEN // HEADS)
    state, keys = layer.rnn_state.clone(), layer.keys.clone()
    cache.reorder_cache(torch.tensor([2, 0, 0]))
    assert torch.equal(layer.rnn_state, state[[2, 0, 0]]) and torch.equal(layer.keys, keys[[2, 0, 0]])
    cache.batch_select_indices(torch.tensor([0, 1]))
    assert torch.equal(layer.rnn_state, state[[2, 0]])
    cache.batch_repeat_interleave(2)
    assert torch.equal(layer.rnn_state, state[[2, 2, 0, 0]])
    assert cache.get_seq_length() == 2 and not cache.is_croppable
    with pytest.raises(NotImplementedError, match="cannot be cropped"):
        cache.crop(-1)


def test_cache_holds_the_growing_self_attention_keys_and_reorders_them():
    model = make_model("bahdanau", "lstm", decoder_layer_types=["self_attention", "rnn"])
    input_ids, attention_mask, _ = batch()
    with torch.no_grad():
        out = model(input_ids, attention_mask=attention_mask, decoder_input_ids=torch.ones(3, 2, dtype=torch.long))
        out = model(
            input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=torch.full((3, 1), 5),
            past_key_values=out.past_key_values,
        )
    cache = out.past_key_values
    self_attention_layer, rnn_layer = cache.layers
    assert cache.get_seq_length() == 3 and self_attention_layer.rnn_state is None
    assert isinstance(self_attention_layer.self_attention, DynamicLayer) and rnn_layer.self_attention is None
    head_dim = HIDDEN // HEADS
    assert self_attention_layer.self_attention.keys.shape == (3, HEADS, 3, head_dim)
    assert self_attention_layer.keys.shape == (3, HEADS, 7, head_dim) and rnn_layer.rnn_state.shape == (3, 2, HIDDEN)
    keys, values = self_attention_layer.self_attention.keys.clone(), self_attention_layer.self_attention.values.clone()
    state = rnn_layer.rnn_state.clone()
    cache.reorder_cache(torch.tensor([2, 0, 0]))
    assert torch.equal(self_attention_layer.self_attention.keys, keys[[2, 0, 0]])
    assert torch.equal(self_attention_layer.self_attention.values, values[[2, 0, 0]])
    assert torch.equal(rnn_layer.rnn_state, state[[2, 0, 0]])
    cache.batch_repeat_interleave(2)
    assert torch.equal(self_attention_layer.self_attention.keys, keys[[2, 2, 0, 0, 0, 0]])
    assert self_attention_layer.batch_size == 6


@pytest.mark.parametrize("tie_word_embeddings", [True, False])
def test_save_and_load_round_trip(tmp_path, tie_word_embeddings):
    model = make_model("general", tie_word_embeddings=tie_word_embeddings)
    assert (model.lm_head.weight is model.get_input_embeddings().weight) == tie_word_embeddings
    input_ids, attention_mask, labels = batch()
    expected = model(input_ids, attention_mask=attention_mask, labels=labels).logits
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is Seq2SeqAttentionForConditionalGeneration
    torch.testing.assert_close(loaded(input_ids, attention_mask=attention_mask, labels=labels).logits, expected)
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base) is Seq2SeqAttentionModel


@pytest.mark.parametrize(
    ("encoder_layer_types", "decoder_layer_types"),
    [(None, None), (["self_attention", "rnn"], None), (["self_attention"] * 2, ["self_attention"] * 2)],
)
def test_trust_remote_code_loads_without_the_package(tmp_path, encoder_layer_types, decoder_layer_types):
    model = make_model("bahdanau", encoder_layer_types=encoder_layer_types, decoder_layer_types=decoder_layer_types)
    model.save_pretrained(tmp_path)
    for name in (
        "modeling_seq2seq_attention.py",
        "configuration_seq2seq_attention.py",
        "attention.py",
        "cache_seq2seq_attention.py",
    ):
        assert (tmp_path / name).is_file(), name
    input_ids, attention_mask, _ = batch()
    expected = model.generate(input_ids, attention_mask=attention_mask, num_beams=2, max_new_tokens=6)
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["hf_attention"] = None  # the package cannot be imported
        import torch
        from transformers import AutoModelForSeq2SeqLM
        model = AutoModelForSeq2SeqLM.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        ids = torch.tensor({input_ids.tolist()})
        mask = torch.tensor({attention_mask.tolist()})
        print(model.generate(ids, attention_mask=mask, num_beams=2, max_new_tokens=6).tolist())
        """
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == str(expected.tolist())


def test_resize_token_embeddings_keeps_tying_and_works():
    model = make_model()
    model.resize_token_embeddings(VOCAB + 8)
    assert model.config.vocab_size == VOCAB + 8
    assert model.lm_head.weight is model.get_input_embeddings().weight
    input_ids, attention_mask, labels = batch()
    input_ids[0, 0] = VOCAB + 7
    assert model(input_ids, attention_mask=attention_mask, labels=labels).logits.shape[-1] == VOCAB + 8


def test_gradient_checkpointing_gives_the_same_gradients():
    input_ids, attention_mask, labels = batch()
    gradients = []
    for checkpointing in (False, True):
        model = make_model("bahdanau", "lstm", dropout=0.0).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert gradients[0].keys() == gradients[1].keys()
    for name in gradients[0]:
        torch.testing.assert_close(gradients[1][name], gradients[0][name], msg=name)


def test_bad_input_raises_clear_errors():
    model = make_model()
    input_ids, attention_mask, labels = batch()
    bad_ids = input_ids.clone()
    bad_ids[0, 0] = VOCAB
    with pytest.raises(ValueError, match=rf"input_ids contains token id {VOCAB}, outside the vocabulary \[0, 39\]"):
        model(bad_ids, attention_mask=attention_mask, labels=labels)
    with pytest.raises(ValueError, match=r"decoder_input_ids contains token id -1"):
        model(input_ids, attention_mask=attention_mask, decoder_input_ids=torch.full((3, 2), -1))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(3, 6\) but input_ids has shape \(3, 7\)"):
        model(input_ids, attention_mask=attention_mask[:, :6], labels=labels)
    bad_labels = labels.clone()
    bad_labels[1, 1] = -5
    with pytest.raises(ValueError, match=r"labels contains -5; labels must be token ids in \[0, 39\] or -100"):
        model(input_ids, attention_mask=attention_mask, labels=bad_labels)
    from transformers import DynamicCache

    with pytest.raises(ValueError, match="past_key_values is a DynamicCache"):
        model(input_ids, decoder_input_ids=labels, past_key_values=DynamicCache(), use_cache=True)
    with pytest.raises(ValueError, match="Pass exactly one of decoder_input_ids and decoder_inputs_embeds"):
        model(input_ids, attention_mask=attention_mask)


def test_compiled_additive_attention_trains_like_eager():
    """`compile_additive_attention=True` (the fused kernels, also the default for large scores) against `False`
    (always eager): same loss, same gradients."""
    eager = make_model("bahdanau", compile_additive_attention=False)
    compiled = make_model("bahdanau", compile_additive_attention=True)
    compiled.load_state_dict(eager.state_dict())
    input_ids, attention_mask, labels = batch(seed=5)
    losses = [model(input_ids, attention_mask=attention_mask, labels=labels).loss for model in (eager, compiled)]
    torch.testing.assert_close(losses[1], losses[0], atol=1e-5, rtol=1e-5)
    for loss in losses:
        loss.backward()
    for (name, expected), actual in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(actual.grad, expected.grad, atol=1e-5, rtol=1e-5, msg=name)


def test_checkpoints_in_the_older_encoder_layout_load_and_save_in_todays(tmp_path):
    """Checkpoints saved before the encoder's directions became two modules name them `rnn.*` / `rnn.*_reverse`:
    `from_pretrained` loads them into `forward_rnn` / `backward_rnn` (same outputs), and `save_pretrained` writes
    today's names."""
    from safetensors.torch import load_file, save_file

    model = make_model("bahdanau", "lstm")
    old_state = {}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":  # tied to the embeddings: not saved
            continue
        for direction, suffix in (("forward_rnn", ""), ("backward_rnn", "_reverse")):
            if f".{direction}." in key:
                key = key.replace(f".{direction}.", ".rnn.") + suffix
        old_state[key] = value.clone()
    assert "model.encoder.layers.0.rnn.weight_hh_l0_reverse" in old_state
    model.config.save_pretrained(tmp_path / "old")
    save_file(old_state, tmp_path / "old" / "model.safetensors", metadata={"format": "pt"})

    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "old").eval()
    for name, parameter in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], parameter, atol=0, rtol=0, msg=name)
    input_ids, attention_mask, labels = batch()
    expected = model(input_ids, attention_mask=attention_mask, labels=labels).logits
    torch.testing.assert_close(loaded(input_ids, attention_mask=attention_mask, labels=labels).logits, expected)

    loaded.save_pretrained(tmp_path / "new")
    saved = load_file(tmp_path / "new" / "model.safetensors")
    assert set(saved) == {key for key in model.state_dict() if key != "lm_head.weight"}


@pytest.mark.parametrize(
    ("attention_type", "rnn_type"), [("bahdanau", "lstm"), ("scaled_dot", "gru"), ("none", "lstm")]
)
@pytest.mark.parametrize("num_beams", [1, 3])
def test_cached_generation_scores_equal_the_teacher_forced_logits(attention_type, rnn_type, num_beams):
    """Every step of `generate` (cache on, as by default) scores like one teacher-forced pass over its output."""
    model = make_model(attention_type, rnn_type)
    input_ids, attention_mask, _ = batch()
    out = model.generate(
        input_ids,
        attention_mask=attention_mask,
        num_beams=num_beams,
        num_return_sequences=num_beams,
        max_new_tokens=6,
        min_new_tokens=6,
        output_logits=True,
        output_scores=True,
        return_dict_in_generate=True,
    )
    if num_beams > 1:
        # Beam search's per-step logits follow the beams of that step; score the finished sequences instead.
        with torch.no_grad():
            source = input_ids.repeat_interleave(num_beams, 0), attention_mask.repeat_interleave(num_beams, 0)
            teacher = model(source[0], attention_mask=source[1], decoder_input_ids=out.sequences[:, :-1]).logits
        log_probs = teacher.log_softmax(-1).gather(-1, out.sequences[:, 1:, None]).squeeze(-1)
        torch.testing.assert_close(log_probs.sum(-1) / 6, out.sequences_scores, atol=1e-4, rtol=1e-4)
        return
    with torch.no_grad():
        teacher = model(input_ids, attention_mask=attention_mask, decoder_input_ids=out.sequences[:, :-1]).logits
    torch.testing.assert_close(torch.stack(out.logits, dim=1), teacher, atol=1e-5, rtol=1e-5)


def test_forward_takes_the_cache_under_either_name():
    """transformers 5.24 passes the decoding cache as `cache=`, earlier versions as `past_key_values=`."""
    model = make_model("bahdanau", "lstm")
    input_ids, attention_mask, labels = batch()
    with torch.no_grad():
        full = model(input_ids, attention_mask=attention_mask, decoder_input_ids=labels).logits
        for name in ("cache", "past_key_values"):
            first = model(input_ids, attention_mask=attention_mask, decoder_input_ids=labels[:, :2], use_cache=True)
            state = first[CACHE_OUTPUT_FIELD]
            second = model(
                input_ids,
                attention_mask=attention_mask,
                decoder_input_ids=labels[:, 2:],
                use_cache=True,
                **{name: state},
            )
            torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), full, atol=1e-5, rtol=1e-5)
        other = model(input_ids, attention_mask=attention_mask, decoder_input_ids=labels[:, :2], use_cache=True)
        other_state = other[CACHE_OUTPUT_FIELD]
        with pytest.raises(ValueError, match="Pass the decoding cache once"):
            model(input_ids, decoder_input_ids=labels[:, 2:], cache=state, past_key_values=other_state)


@pytest.mark.parametrize("name", ["cache_params", "state", "decoder_past", "not_an_argument"])
def test_forward_refuses_keyword_arguments_it_does_not_know(name):
    """An unknown argument (which may carry state, such as a renamed cache) is an error, never silently dropped."""
    model = make_model()
    input_ids, attention_mask, labels = batch()
    for module in (model, model.model):
        with pytest.raises(TypeError, match=name):
            module(input_ids, attention_mask=attention_mask, decoder_input_ids=labels, **{name: object()})
    with pytest.raises(TypeError, match=name):
        model.get_encoder()(input_ids, **{name: object()})


def test_decoder_attention_mask_right_padding_is_honoured_and_any_other_refused():
    model = make_model("bahdanau", "lstm")
    input_ids, attention_mask, labels = batch()
    right = torch.ones_like(labels)
    right[0, 3:] = 0
    with torch.no_grad():
        plain = model(input_ids, attention_mask=attention_mask, decoder_input_ids=labels).logits
        masked = model(
            input_ids, attention_mask=attention_mask, decoder_input_ids=labels, decoder_attention_mask=right
        )
    torch.testing.assert_close(masked.logits, plain)
    left = torch.ones_like(labels)
    left[0, :2] = 0
    with pytest.raises(ValueError, match="decoder_attention_mask must be right padding"):
        model(input_ids, attention_mask=attention_mask, decoder_input_ids=labels, decoder_attention_mask=left)
    with pytest.raises(ValueError, match=r"decoder_attention_mask has shape \(3, 4\); expected \(3, 5\)"):
        model(input_ids, decoder_input_ids=labels, decoder_attention_mask=right[:, :4])
    with pytest.raises(ValueError, match="decoder_attention_mask must be right padding"):
        model.generate(
            input_ids, decoder_input_ids=labels[:, :3], decoder_attention_mask=left[:, :3], max_new_tokens=2
        )


def test_bad_shapes_and_dtypes_raise_clear_errors_early():
    model = make_model()
    input_ids, attention_mask, labels = batch()
    cases = [
        (dict(input_ids=input_ids[:, :0], labels=labels), r"input_ids has shape \(3, 0\): each sequence needs"),
        (dict(input_ids=input_ids[:0], labels=labels[:0]), r"labels has shape \(0, 5\): the batch is empty"),
        (dict(input_ids=input_ids[:0], decoder_input_ids=labels[:0]), r"input_ids has shape \(0, 7\): the batch is"),
        (dict(input_ids=input_ids.float(), labels=labels), r"input_ids has dtype torch.float32; token ids must be"),
        (dict(input_ids=input_ids, labels=labels[:2]), r"labels has batch size 2 but the source has 3"),
        (
            dict(input_ids=input_ids, labels=labels, decoder_input_ids=labels[:, :4]),
            r"labels has shape \(3, 5\) but decoder_input_ids has shape \(3, 4\)",
        ),
        (dict(input_ids=input_ids, decoder_input_ids=labels[:2]), r"decoder inputs have batch size 2 but the source"),
        (dict(input_ids=input_ids, labels=labels.float()), r"labels has dtype torch.float32"),
        (dict(input_ids=input_ids, decoder_input_ids=labels[:, :0]), r"decoder_input_ids has shape \(3, 0\)"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            model(**kwargs)
    with pytest.raises(ValueError, match=r"input_ids has dtype torch.float32"):
        model.generate(input_ids.float(), max_new_tokens=2)
    with pytest.raises(ValueError, match=rf"input_ids contains token id {VOCAB}"):
        model.generate(torch.full((1, 3), VOCAB), max_new_tokens=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(pad_token_id=-1), r"pad_token_id=-1 is outside the vocabulary \[0, 39\]"),
        (dict(pad_token_id=VOCAB), rf"pad_token_id={VOCAB} is outside the vocabulary"),
        (dict(eos_token_id=[2, 99]), r"eos_token_id=99 is outside the vocabulary"),
        (dict(decoder_start_token_id=-3), r"decoder_start_token_id=-3 is outside"),
        (dict(initializer_range=-0.1), r"initializer_range=-0.1 must be >= 0"),
    ],
)
def test_config_refuses_token_ids_outside_the_vocabulary_and_negative_init(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Seq2SeqAttentionConfig(vocab_size=VOCAB, **kwargs)


def recorded_refusal(field: str, value: str, saved: str) -> str:
    """The start of the refusal of a checkpoint whose weights_manifest.json records `field=saved`."""
    return rf"{field}='{value}', but the weights were saved with {field}='{saved}'"


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "saved-before-manifests"])
@pytest.mark.parametrize(
    ("saved", "requested"),
    [("bahdanau", "scaled_dot"), ("scaled_dot", "bahdanau"), ("dot", "scaled_dot"), ("general", "none")],
)
def test_loading_with_another_attention_type_is_refused(tmp_path, saved, requested, manifest):
    make_model(saved).save_pretrained(tmp_path)
    if not manifest:
        (tmp_path / "weights_manifest.json").unlink()
    message = (
        recorded_refusal("attention_type", requested, saved)
        if manifest
        else rf"attention_type='{saved}'; it cannot be loaded as attention_type='{requested}'"
    )
    with pytest.raises(ValueError, match=message):
        AutoModelForSeq2SeqLM.from_pretrained(tmp_path, attention_type=requested)
    config = Seq2SeqAttentionConfig.from_pretrained(tmp_path)
    config.attention_type = requested
    with pytest.raises(ValueError, match=message):
        Seq2SeqAttentionForConditionalGeneration.from_pretrained(tmp_path, config=config)


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "saved-before-manifests"])
@pytest.mark.parametrize(
    ("saved", "edited", "weights"),
    [
        ("bahdanau", "scaled_dot", "'bahdanau'"),
        ("scaled_dot", "bahdanau", "'scaled_dot' or 'dot'"),
        ("general", "dot", "'general'"),
        ("none", "bahdanau", "'none'"),
        ("bahdanau", "none", "'bahdanau'"),
    ],
)
def test_weights_of_another_attention_type_than_config_json_are_refused(tmp_path, saved, edited, weights, manifest):
    make_model(saved).save_pretrained(tmp_path)
    if not manifest:
        (tmp_path / "weights_manifest.json").unlink()
    config_file = tmp_path / "config.json"
    config_file.write_text(
        config_file.read_text().replace(f'"attention_type": "{saved}"', f'"attention_type": "{edited}"')
    )
    message = (
        re.escape(f"{config_file}: ") + recorded_refusal("attention_type", edited, saved)
        if manifest
        else f"are those of attention_type={weights}, but its config asks for attention_type='{edited}'"
    )
    with pytest.raises(ValueError, match=message):
        AutoModelForSeq2SeqLM.from_pretrained(tmp_path)


def test_loading_info_is_still_returned_when_asked_for(tmp_path):
    make_model().save_pretrained(tmp_path)
    model, info = AutoModelForSeq2SeqLM.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(model, Seq2SeqAttentionForConditionalGeneration)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "saved-before-manifests"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_unreadable_weights_file_is_named(tmp_path, damage, manifest):
    make_model().save_pretrained(tmp_path)
    if not manifest:
        (tmp_path / "weights_manifest.json").unlink()
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"empty": b"", "truncated": data[: len(data) * 9 // 10], "garbage": b"\x00" * 64}[damage])
    message = "the file's bytes changed after it was saved" if manifest else "is not a readable safetensors file"
    with pytest.raises(OSError, match=re.escape(f"{weights}") + ".*" + message):
        AutoModelForSeq2SeqLM.from_pretrained(tmp_path)


def test_cache_prefetch_returns_the_state_to_the_device_it_was_computed_on():
    model = make_model("bahdanau", "lstm")
    input_ids, attention_mask, labels = batch()
    with torch.no_grad():
        cache = model(input_ids, decoder_input_ids=labels, use_cache=True)[CACHE_OUTPUT_FIELD]
    layer = cache.layers[0]
    # A stand-in accelerator: the state lives on "meta"; offload moves copies to the CPU and prefetch must undo it.
    layer.rnn_state, layer.keys, layer.values = (
        tensor.to("meta") for tensor in (layer.rnn_state, layer.keys, layer.values)
    )
    layer.device = torch.device("meta")
    moved = []

    def recording_to(tensor, device, *args, **kwargs):
        moved.append(torch.device(device))
        return torch.empty_like(tensor, device=device)

    with mock.patch.object(torch.Tensor, "to", recording_to):
        layer.offload()
        assert layer.rnn_state.device.type == "cpu"
        layer.prefetch()
    assert moved[-3:] == [torch.device("meta")] * 3
    assert layer.rnn_state.device.type == "meta" and layer.keys.device.type == "meta"


class DecoderStep(nn.Module):
    """One cached decoding step with plain tensors in and out, the form an exporter needs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, decoder_input_ids, encoder_hidden_states, attention_mask, states, keys, values):
        cache = Seq2SeqAttentionCache(len(states))
        for layer, state, layer_keys, layer_values in zip(cache.layers, states, keys, values, strict=True):
            layer.update(layer_keys, layer_values)
            layer.update_rnn_state(state, 1)
        logits = self.model(
            encoder_outputs=(encoder_hidden_states,),
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            past_key_values=cache,
            use_cache=True,
        ).logits
        return logits, tuple(layer.rnn_state for layer in cache.layers)


@pytest.mark.parametrize("attention_type", ["bahdanau", "scaled_dot"])
def test_torch_export_of_the_encoder_and_of_one_decoder_step(attention_type):
    """Value checks stay out of traced code, so `torch.export` captures whole graphs that compute what eager does."""
    model = make_model(attention_type, "lstm")
    input_ids, attention_mask, labels = batch()
    encoder = model.get_encoder()
    with torch.no_grad():
        exported_encoder = torch.export.export(encoder, (input_ids, attention_mask), {"return_dict": False})
        encoder_states = encoder(input_ids, attention_mask=attention_mask).last_hidden_state
        torch.testing.assert_close(
            exported_encoder.module()(input_ids, attention_mask, return_dict=False)[0], encoder_states
        )
        first = model(
            encoder_outputs=(encoder_states,), attention_mask=attention_mask, decoder_input_ids=labels[:, :1]
        )[CACHE_OUTPUT_FIELD]
        layers = first.layers
        step_inputs = (
            labels[:, 1:2],
            encoder_states,
            attention_mask,
            tuple(layer.rnn_state for layer in layers),
            tuple(layer.keys for layer in layers),
            tuple(layer.values for layer in layers),
        )
        exported_step = torch.export.export(DecoderStep(model), step_inputs)
        expected = model(
            encoder_outputs=(encoder_states,),
            attention_mask=attention_mask,
            decoder_input_ids=labels[:, 1:2],
            past_key_values=first,
            use_cache=True,
        )
        logits, states = exported_step.module()(*step_inputs)
    torch.testing.assert_close(logits, expected.logits)
    for state, layer in zip(states, expected[CACHE_OUTPUT_FIELD].layers, strict=True):
        torch.testing.assert_close(state, layer.rnn_state)


def test_bf16_autocast_on_a_cpu_without_bf16_rnn_kernels_runs_the_rnns_in_float32():
    """oneDNN's bf16 LSTM needs AVX-512 BF16 or AMX; elsewhere the RNNs run in float32 and the rest in bf16."""
    from hf_attention import modeling_seq2seq_attention

    model = make_model("bahdanau", "lstm").train()
    input_ids, attention_mask, labels = batch()
    with mock.patch.object(modeling_seq2seq_attention, "cpu_has_bf16_kernels", return_value=False):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs = model(input_ids, attention_mask=attention_mask, labels=labels, output_hidden_states=True)
            query, _ = modeling_seq2seq_attention.run_rnn(model.model.decoder.layers[0].rnn, torch.randn(3, 4, HIDDEN))
        outputs.loss.backward()
    assert query.dtype == torch.float32
    assert torch.isfinite(outputs.loss)
    model.eval()
    with torch.no_grad():
        eager = make_model("bahdanau", "lstm")(input_ids, attention_mask=attention_mask, labels=labels).loss
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(input_ids, attention_mask=attention_mask, labels=labels).loss
    torch.testing.assert_close(mixed, eager, atol=0.05, rtol=0.02)
    assert all(parameter.grad is not None for parameter in model.model.encoder.layers[0].parameters())


def test_word_dropout_zeroes_whole_tokens_and_scales_the_rest():
    embeddings = torch.randn(4, 50, 8) + 3.0  # no entry is 0 by chance
    torch.manual_seed(0)
    dropped = drop_words(embeddings, 0.25, training=True)
    zero = (dropped == 0).all(dim=-1)
    kept = ~zero
    assert ((dropped == 0) == zero.unsqueeze(-1)).all()  # a token is dropped whole or not at all
    torch.testing.assert_close(dropped[kept], embeddings[kept] / 0.75)
    assert 0.15 < zero.float().mean() < 0.35
    assert torch.equal(drop_words(embeddings, 0.25, training=False), embeddings)
    assert torch.equal(drop_words(embeddings, 0.0, training=True), embeddings)


def test_word_dropout_draws_a_new_mask_per_call_and_keeps_no_reference():
    embeddings = torch.randn(4, 50, 8) + 3.0
    first, second = drop_words(embeddings, 0.25, training=True), drop_words(embeddings, 0.25, training=True)
    assert not torch.equal(first, second)
    reference = weakref.ref(embeddings)
    del embeddings, first, second
    gc.collect()
    assert reference() is None  # nothing holds a training step's embeddings (and their graph) after the step


def test_a_training_step_leaves_no_tensor_behind():
    model = make_model("bahdanau", "lstm")
    model.train()
    source_ids, attention_mask, labels = batch()

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))

    model(source_ids, attention_mask=attention_mask, labels=labels).loss.backward()
    model.zero_grad(set_to_none=True)
    before = live_tensors()
    for _ in range(3):
        model(source_ids, attention_mask=attention_mask, labels=labels).loss.backward()
        model.zero_grad(set_to_none=True)
    assert live_tensors() == before


def test_word_dropout_drops_source_and_decoder_tokens_in_training_only():
    source_ids, _, labels = batch(src_len=40, tgt_len=30)
    inputs = {"input_ids": source_ids, "labels": labels}
    inputs["decoder_input_ids"] = shift_tokens_right(labels, pad_token_id=0, decoder_start_token_id=1)
    model = make_model(word_dropout=0.5)
    reference = make_model()
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, reference(**inputs).logits)  # eval: no word dropout
        model.train()
        seen = {}
        model.model.encoder.layers[0].register_forward_hook(lambda module, args, out: seen.update(source=args[0]))
        model.model.decoder.layers[0].register_forward_hook(lambda module, args, out: seen.update(target=args[0]))
        torch.manual_seed(1)
        model(**inputs)
    for name, ids in (("source", inputs["input_ids"]), ("target", inputs["decoder_input_ids"])):
        zero = (seen[name] == 0).all(dim=-1)
        embedded = model.model.encoder.embed_tokens(ids)
        # No padding in this batch: the encoder's gathering of real tokens to the front leaves the order as it is.
        assert 0 < zero.sum() < zero.numel(), name
        torch.testing.assert_close(seen[name][~zero], embedded[~zero] / 0.5, msg=name)


# --- self-attention in the encoder ----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoder_layer_types", ENCODER_MIXES)
@pytest.mark.parametrize("self_attention_type", ["bahdanau", "scaled_dot"])
def test_self_attention_encoder_ignores_padding_on_either_side(encoder_layer_types, self_attention_type):
    model = make_model(encoder_layer_types=encoder_layer_types, self_attention_type=self_attention_type)
    input_ids, attention_mask, labels = batch()  # row 1: 5 real tokens, then padding
    left_ids, left_mask = input_ids.clone(), attention_mask.clone()
    left_ids[1], left_mask[1] = input_ids[1].roll(2), attention_mask[1].roll(2)
    right = model(input_ids, attention_mask=attention_mask, labels=labels, output_attentions=True)
    left = model(left_ids, attention_mask=left_mask, labels=labels, output_attentions=True)
    alone = model(input_ids[1:2, :5], labels=labels[1:2], output_attentions=True)
    torch.testing.assert_close(left.logits, right.logits)
    torch.testing.assert_close(right.logits[1:2], alone.logits)
    assert len(right.encoder_attentions) == encoder_layer_types.count("self_attention")
    for weights, left_weights, alone_weights in zip(
        right.encoder_attentions, left.encoder_attentions, alone.encoder_attentions, strict=True
    ):
        assert weights.shape == (3, HEADS, 7, 7)
        assert torch.all(weights[1, :, :, 5:] == 0) and torch.all(weights[1, :, 5:, :] == 0)
        torch.testing.assert_close(weights[1, :, :5, :5], alone_weights[0])
        torch.testing.assert_close(left_weights[1].roll((-2, -2), dims=(1, 2)), weights[1])
        torch.testing.assert_close(weights[0].sum(-1), torch.ones(HEADS, 7))


def test_sinusoidal_positions_follow_the_formula():
    table = sinusoidal_positions(5, 8)
    position, feature = 3, 1
    angle = position / 10000 ** (feature / 4)
    assert table.shape == (5, 8)
    torch.testing.assert_close(table[position, feature], torch.tensor(math.sin(angle)))
    torch.testing.assert_close(table[position, 4 + feature], torch.tensor(math.cos(angle)))
    torch.testing.assert_close(table[0], torch.tensor([0.0] * 4 + [1.0] * 4))


def test_a_self_attention_encoder_sees_word_order():
    """Without positions, self-attention layers alone would give a permuted source permuted outputs."""
    model = make_model(encoder_layer_types=["self_attention", "self_attention"], self_attention_type="scaled_dot")
    assert model.model.encoder.adds_positions
    input_ids = torch.tensor([[5, 6, 7, 8, 9]])
    swapped = torch.tensor([[6, 5, 7, 8, 9]])
    states = model.get_encoder()(input_ids).last_hidden_state
    swapped_states = model.get_encoder()(swapped).last_hidden_state
    assert not torch.allclose(states[:, 2:], swapped_states[:, 2:], atol=1e-4)
    with mock.patch.object(model.model.encoder, "adds_positions", False):
        states = model.get_encoder()(input_ids).last_hidden_state
        swapped_states = model.get_encoder()(swapped).last_hidden_state
    torch.testing.assert_close(states[:, 2:], swapped_states[:, 2:])
    assert not make_model(encoder_layer_types=["rnn", "self_attention"]).model.encoder.adds_positions


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_returns_the_self_attention_of_encoder_and_decoder(num_beams):
    model = make_model(encoder_layer_types=["self_attention", "rnn"], decoder_layer_types=["rnn", "self_attention"])
    input_ids, attention_mask, _ = batch()
    output = model.generate(
        input_ids,
        attention_mask=attention_mask,
        num_beams=num_beams,
        max_new_tokens=4,
        min_new_tokens=4,
        return_dict_in_generate=True,
        output_attentions=True,
    )
    # generate encodes the batch once, before it is expanded to the beams.
    encoder = model.get_encoder()(input_ids, attention_mask=attention_mask, output_attentions=True)
    assert len(output.encoder_attentions) == 1
    torch.testing.assert_close(output.encoder_attentions[0], encoder.attentions[0])
    expected = model(
        input_ids, attention_mask=attention_mask, decoder_input_ids=output.sequences[:, :-1], output_attentions=True
    )
    # The decoder's: one tuple per generated step, one entry per self-attention layer, over the tokens so far.
    assert len(output.decoder_attentions) == 4
    for step, weights in enumerate(output.decoder_attentions):
        assert len(weights) == 1 and weights[0].shape == (3 * num_beams, HEADS, 1, step + 1)
        torch.testing.assert_close(weights[0].sum(-1), torch.ones(3 * num_beams, HEADS, 1))
        if num_beams == 1:  # beams reorder between steps; the greedy path is one teacher-forced pass
            torch.testing.assert_close(weights[0][:, :, 0], expected.decoder_attentions[0][:, :, step, : step + 1])
    rnn_output = make_model()(input_ids, decoder_input_ids=input_ids, output_attentions=True)
    assert rnn_output.encoder_attentions is None and rnn_output.decoder_attentions is None


def test_configs_without_layer_types_load_as_the_rnn_model(tmp_path):
    model = make_model("bahdanau")
    model.save_pretrained(tmp_path)
    config_file = tmp_path / "config.json"
    saved = json.loads(config_file.read_text())
    assert saved["encoder_layer_types"] == ["rnn", "rnn"]
    for key in ("encoder_layer_types", "decoder_layer_types", "self_attention_type", "intermediate_size"):
        del saved[key]
    config_file.write_text(json.dumps(saved))
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert loaded.config.encoder_layer_types == ["rnn", "rnn"] and loaded.config.self_attention_type == "bahdanau"
    input_ids, attention_mask, labels = batch()
    torch.testing.assert_close(
        loaded(input_ids, attention_mask=attention_mask, labels=labels).logits,
        model(input_ids, attention_mask=attention_mask, labels=labels).logits,
    )
