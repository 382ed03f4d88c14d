"""transformers' own generic model tests (ModelTesterMixin, GenerationTesterMixin, ConfigTester) run against this
package's models, for the `"bahdanau"` and `"scaled_dot"` attention types, with three layer mixes: RNN layers on both
sides, a self-attention encoder under the RNN decoder, and self-attention on both sides (a Transformer).

The upstream test files are not part of this repository: they are read from `HF_TESTS_DIR` (default: beside the
repository, `../shared/hf_tests_<major>.<minor>` matching the installed transformers, else `../shared/hf_tests` when
its README names the installed version; see their READMEs). Without a suite for the installed version this module is
skipped with a message.

What is adapted, and why:
- The mixins decide "base model or seq2seq LM head?" from transformers' static name tables; a plugin model is not in
  them, so each test runs with the two class names listed there (`unittest.mock.patch.dict`).
- The cache is not a key/value cache (see `cache_seq2seq_attention.py`): `_check_past_key_values_for_generate` and
  `_check_caches_are_equal`, the hooks the mixin asks non-standard caches to overwrite, check our cache instead.
- Only self-attention layers return self-attention weights, and every decoder layer cross-attends: the
  attention-shape checks count `encoder_attentions` and `decoder_attentions` per self-attention layer, require them
  to be None for an all-RNN stack, and look at `cross_attentions` per decoder layer (`test_attention_outputs`,
  `_check_encoder_attention_for_generate` and `_check_attentions_for_generate`).
Every test that is skipped outright is listed in `SKIPPED` with its reason.
"""

import copy
import fnmatch
import os
import sys
import unittest
from pathlib import Path
from unittest import mock

import pytest
import torch
import transformers

import hf_attention
from hf_attention import (
    Seq2SeqAttentionCache,
    Seq2SeqAttentionConfig,
    Seq2SeqAttentionForConditionalGeneration,
    Seq2SeqAttentionModel,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_upstream_dir() -> Path | None:
    """The suite written for the installed transformers: `../shared/hf_tests_<major>.<minor>`, else
    `../shared/hf_tests` when its README names the installed version; None when neither matches (the mixins follow
    one release's internals, so another release's suite fails for reasons that are not this model's)."""
    shared = REPO_ROOT.parent / "shared"
    major_minor = ".".join(transformers.__version__.split(".")[:2])
    versioned = shared / f"hf_tests_{major_minor}"
    if versioned.is_dir():
        return versioned
    readme = shared / "hf_tests" / "README.md"
    if readme.is_file() and transformers.__version__ in readme.read_text():
        return shared / "hf_tests"
    return None


_UPSTREAM_DIR = os.environ.get("HF_TESTS_DIR") or _default_upstream_dir()
if _UPSTREAM_DIR is None:
    pytest.skip(
        f"no copy of transformers' upstream test suite for the installed transformers {transformers.__version__} "
        "beside the repository (../shared/hf_tests_<major>.<minor>); set HF_TESTS_DIR to one",
        allow_module_level=True,
    )
HF_TESTS_DIR = Path(_UPSTREAM_DIR).resolve()
if not (HF_TESTS_DIR / "tests" / "test_modeling_common.py").is_file():
    pytest.skip(
        f"transformers' upstream test suite not found at {HF_TESTS_DIR} (set HF_TESTS_DIR to the folder that contains "
        "its tests/ package)",
        allow_module_level=True,
    )


def _import_upstream():
    """Import upstream `tests.*` without letting it shadow or keep a package of the same name."""
    stashed = {name: module for name, module in sys.modules.items() if name == "tests" or name.startswith("tests.")}
    for name in stashed:
        del sys.modules[name]
    sys.path.insert(0, str(HF_TESTS_DIR))
    try:
        from tests.generation.test_utils import GenerationTesterMixin
        from tests.test_configuration_common import ConfigTester
        from tests.test_modeling_common import ModelTesterMixin, ids_tensor

        return ModelTesterMixin, GenerationTesterMixin, ConfigTester, ids_tensor
    finally:
        sys.path.remove(str(HF_TESTS_DIR))
        for name in [name for name in sys.modules if name == "tests" or name.startswith("tests.")]:
            del sys.modules[name]
        sys.modules.update(stashed)


ModelTesterMixin, GenerationTesterMixin, ConfigTester, ids_tensor = _import_upstream()

# Upstream tests that cannot apply to this model (test-name patterns, as `fnmatch` reads them), with the reason. Keep
# this list short.
SKIPPED: dict[str, str] = {
    "test_eager_matches_sdpa_inference_*_pad_left*": (
        "gives the decoder a left-padded decoder_attention_mask; the recurrent decoder reads its inputs in order and "
        "refuses any decoder mask but right padding (tests/test_modeling.py checks both)"
    ),
}


class Seq2SeqAttentionModelTester:
    def __init__(
        self,
        parent,
        attention_type: str,
        encoder_layer_types=None,
        decoder_layer_types=None,
        batch_size=13,
        seq_length=7,
        vocab_size=99,
        hidden_size=16,
    ):
        self.parent = parent
        self.attention_type = attention_type
        self.encoder_layer_types = encoder_layer_types
        self.decoder_layer_types = decoder_layer_types
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.encoder_seq_length = seq_length
        self.decoder_seq_length = seq_length
        self.is_training = True
        self.use_labels = False
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = 2
        self.num_attention_heads = 4
        self.pad_token_id = 1
        self.bos_token_id = 0
        self.eos_token_id = 2
        self.decoder_start_token_id = 0

    def get_config(self) -> Seq2SeqAttentionConfig:
        return Seq2SeqAttentionConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            attention_type=self.attention_type,
            encoder_layer_types=self.encoder_layer_types,
            decoder_layer_types=self.decoder_layer_types,
            intermediate_size=32,
            dropout=0.1,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            decoder_start_token_id=self.decoder_start_token_id,
        )

    def prepare_config_and_inputs(self):
        # Ids from 3 on: no pad/bos/eos inside the inputs, so padding is only where the masks say.
        input_ids = ids_tensor([self.batch_size, self.encoder_seq_length], self.vocab_size - 3) + 3
        decoder_input_ids = ids_tensor([self.batch_size, self.decoder_seq_length], self.vocab_size - 3) + 3
        attention_mask = torch.ones_like(input_ids)
        attention_mask[0, -2:] = 0  # one right-padded source
        input_ids[0, -2:] = self.pad_token_id
        inputs_dict = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "decoder_input_ids": decoder_input_ids,
            "decoder_attention_mask": torch.ones_like(decoder_input_ids),
        }
        return self.get_config(), inputs_dict

    def prepare_config_and_inputs_for_common(self):
        return self.prepare_config_and_inputs()


class _Seq2SeqAttentionUpstreamTest(ModelTesterMixin, GenerationTesterMixin):
    all_model_classes = (Seq2SeqAttentionModel, Seq2SeqAttentionForConditionalGeneration)
    is_encoder_decoder = True
    # The mixins' own switch (its tests are slow-marked, RUN_SLOW=1). The model exports (tests/test_modeling.py checks
    # the encoder and a cached decoder step against eager), but the upstream export helpers here come from
    # transformers' main branch and call `ExportedModel.module()`, which the released exporters do not have.
    test_torch_exportable = False
    attention_type: str = ""
    encoder_layer_types: list[str] | None = None  # None: RNN layers
    decoder_layer_types: list[str] | None = None

    def setUp(self):
        for pattern, reason in SKIPPED.items():
            if fnmatch.fnmatch(self._testMethodName, pattern):
                self.skipTest(reason)
        self.model_tester = Seq2SeqAttentionModelTester(
            self, self.attention_type, self.encoder_layer_types, self.decoder_layer_types
        )
        self.config_tester = ConfigTester(self, config_class=Seq2SeqAttentionConfig, hidden_size=16)
        # List the plugin classes where transformers lists its native models, for the duration of the test.
        from transformers.models.auto import modeling_auto

        for table, class_name in (
            (modeling_auto.MODEL_MAPPING_NAMES, "Seq2SeqAttentionModel"),
            (modeling_auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES, "Seq2SeqAttentionForConditionalGeneration"),
        ):
            patcher = mock.patch.dict(table, {Seq2SeqAttentionConfig.model_type: class_name})
            patcher.start()
            self.addCleanup(patcher.stop)

    def test_config(self):
        self.config_tester.run_common_tests()

    # --- hooks the mixins ask non-standard models to overwrite --------------------------------------------------

    def _check_past_key_values_for_generate(self, batch_size, past_key_values, seq_length, config):
        self.assertIsInstance(past_key_values, Seq2SeqAttentionCache)
        self.assertEqual(len(past_key_values), config.num_hidden_layers)
        self.assertEqual(past_key_values.get_seq_length(), seq_length)
        num_states = 2 if config.rnn_type == "lstm" else 1
        head_dim = config.hidden_size // config.num_attention_heads
        # The mixin may pass `config.get_text_config(decoder=True)`, which renames `decoder_layer_types` `layer_types`.
        layer_types = getattr(config, "layer_types", None) or config.decoder_layer_types
        for layer, layer_type in zip(past_key_values.layers, layer_types, strict=True):
            if layer_type == "rnn":
                self.assertEqual(layer.rnn_state.shape, (batch_size, num_states, config.hidden_size))
                self.assertIsNone(layer.self_attention)
            else:  # the keys and values of every target token so far
                self.assertIsNone(layer.rnn_state)
                expected = (batch_size, config.num_attention_heads, seq_length, head_dim)
                self.assertEqual(layer.self_attention.keys.shape, expected)
                self.assertEqual(layer.self_attention.values.shape, expected)
            self.assertEqual(layer.keys.shape[:2], (batch_size, config.num_attention_heads))
            self.assertEqual(layer.keys.shape[-1], head_dim)
            self.assertEqual(layer.values.shape, layer.keys.shape)

    def _check_caches_are_equal(self, cache1, cache2):
        self.assertEqual(len(cache1), len(cache2))
        self.assertEqual(cache1.get_seq_length(), cache2.get_seq_length())
        for layer1, layer2 in zip(cache1.layers, cache2.layers, strict=True):
            torch.testing.assert_close(layer1.keys, layer2.keys)
            torch.testing.assert_close(layer1.values, layer2.values)
            self.assertEqual(layer1.rnn_state is None, layer2.rnn_state is None)
            if layer1.rnn_state is not None:
                torch.testing.assert_close(layer1.rnn_state, layer2.rnn_state)
            self.assertEqual(layer1.self_attention is None, layer2.self_attention is None)
            if layer1.self_attention is not None:
                torch.testing.assert_close(layer1.self_attention.keys, layer2.self_attention.keys)
                torch.testing.assert_close(layer1.self_attention.values, layer2.self_attention.values)

    def _check_encoder_attention_for_generate(self, attentions, batch_size, config, prompt_length):
        if "self_attention" in config.encoder_layer_types:
            self.assertEqual(len(attentions), config.encoder_layer_types.count("self_attention"))
            for weights in attentions:
                self.assertEqual(weights.shape, (batch_size, config.num_attention_heads, prompt_length, prompt_length))
        else:
            self.assertIsNone(attentions, "an RNN encoder has no self-attention")

    def _check_attentions_for_generate(
        self, batch_size, attentions, prompt_length, output_length, config, decoder_past_key_values
    ):
        # `attentions` are the decoder self-attentions: per step, one tensor per self-attention layer, or None.
        self.assertIsInstance(attentions, tuple)
        self.assertEqual(len(attentions), output_length - prompt_length)
        self_attention_layers = config.decoder_layer_types.count("self_attention")
        if self_attention_layers == 0:
            self.assertTrue(all(step is None for step in attentions))
            return
        use_cache = decoder_past_key_values is not None
        for generated, step in enumerate(attentions):
            new_tokens = 1 if use_cache and generated > 0 else prompt_length + generated
            expected = (batch_size, config.num_attention_heads, new_tokens, prompt_length + generated)
            self.assertEqual([weights.shape for weights in step], [expected] * self_attention_layers)

    def _check_generate_outputs(self, output, config, use_cache=False, num_return_sequences=1, num_beams=1):
        super()._check_generate_outputs(output, config, use_cache, num_return_sequences, num_beams)
        if output.cross_attentions is None:
            return
        # The cross attention of every generated step: [internal batch, heads, new tokens, src_len] per layer.
        internal_batch = output.sequences.shape[0] // num_return_sequences * max(num_beams, num_return_sequences)
        if num_beams > 1:
            internal_batch = output.sequences.shape[0] // num_return_sequences * num_beams
        self.assertEqual(len(output.cross_attentions), output.sequences.shape[1] - 1)
        for step, step_attentions in enumerate(output.cross_attentions):
            new_tokens = 1 if use_cache or step == 0 else step + 1
            self.assertEqual(len(step_attentions), config.num_hidden_layers)
            for layer_attentions in step_attentions:
                self.assertEqual(
                    layer_attentions.shape,
                    (internal_batch, config.num_attention_heads, new_tokens, self.model_tester.encoder_seq_length),
                )

    # --- tests rewritten for a model whose self-attention weights come from its self-attention layers only -------

    def test_attention_outputs(self):
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        tester = self.model_tester
        for model_class in self.all_model_classes:
            for from_config in (False, True):
                run_config = copy.deepcopy(config)
                kwargs = dict(inputs_dict)
                if from_config:
                    run_config.output_attentions = True
                else:
                    kwargs["output_attentions"] = True
                model = model_class._from_config(run_config, attn_implementation="eager").eval()
                with torch.no_grad():
                    outputs = model(**kwargs)
                decoder_self_attention_layers = run_config.decoder_layer_types.count("self_attention")
                if decoder_self_attention_layers == 0:
                    self.assertIsNone(outputs.decoder_attentions)
                else:
                    self.assertEqual(len(outputs.decoder_attentions), decoder_self_attention_layers)
                for weights in outputs.decoder_attentions or ():
                    length = tester.decoder_seq_length
                    self.assertEqual(weights.shape, (tester.batch_size, tester.num_attention_heads, length, length))
                    # Causal: no target position attends to a later one.
                    self.assertTrue(torch.all(weights.triu(diagonal=1) == 0))
                    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
                self_attention_layers = run_config.encoder_layer_types.count("self_attention")
                if self_attention_layers == 0:
                    self.assertIsNone(outputs.encoder_attentions)
                else:
                    self.assertEqual(len(outputs.encoder_attentions), self_attention_layers)
                for weights in outputs.encoder_attentions or ():
                    self.assertEqual(
                        weights.shape,
                        (tester.batch_size, tester.num_attention_heads, tester.seq_length, tester.seq_length),
                    )
                    # Row 0's last two source positions are padding: no query attends to them, and they ask nothing.
                    self.assertTrue(torch.all(weights[0, :, :, -2:] == 0))
                    self.assertTrue(torch.all(weights[0, :, -2:, :] == 0))
                    torch.testing.assert_close(weights[1:].sum(-1), torch.ones(weights[1:].shape[:-1]))
                self.assertEqual(len(outputs.cross_attentions), tester.num_hidden_layers)
                for weights in outputs.cross_attentions:
                    self.assertEqual(
                        weights.shape,
                        (tester.batch_size, tester.num_attention_heads, tester.decoder_seq_length, tester.seq_length),
                    )
                    # Row 0 has two padded source positions: zero weight there, and every row sums to one.
                    self.assertTrue(torch.all(weights[0, :, :, -2:] == 0))
                    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))

    def test_retain_grad_hidden_states_attentions(self):
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        config.output_hidden_states = True
        config.output_attentions = True
        model = self.all_model_classes[0]._from_config(config, attn_implementation="eager")
        outputs = model(**inputs_dict)
        encoder_hidden_states = outputs.encoder_hidden_states[0]
        decoder_hidden_states = outputs.decoder_hidden_states[0]
        cross_attentions = outputs.cross_attentions[0]
        for tensor in (encoder_hidden_states, decoder_hidden_states, cross_attentions):
            tensor.retain_grad()
        outputs[0].flatten()[0].backward(retain_graph=True)
        for tensor in (encoder_hidden_states, decoder_hidden_states, cross_attentions):
            self.assertIsNotNone(tensor.grad)
            self.assertGreater(tensor.grad.abs().sum().item(), 0)

    def test_model_weights_reload_no_missing_tied_weights(self):
        # The upstream test rewrites model.safetensors after saving, on purpose: saved without the manifest that
        # would refuse the changed bytes.
        with mock.patch("hf_attention.modeling_seq2seq_attention.write_manifest"):
            super().test_model_weights_reload_no_missing_tied_weights()


class BahdanauUpstreamTest(_Seq2SeqAttentionUpstreamTest, unittest.TestCase):
    attention_type = "bahdanau"


class ScaledDotUpstreamTest(_Seq2SeqAttentionUpstreamTest, unittest.TestCase):
    attention_type = "scaled_dot"


class BahdanauSelfAttentionEncoderUpstreamTest(_Seq2SeqAttentionUpstreamTest, unittest.TestCase):
    attention_type = "bahdanau"
    encoder_layer_types = ["self_attention", "self_attention"]


class ScaledDotSelfAttentionEncoderUpstreamTest(_Seq2SeqAttentionUpstreamTest, unittest.TestCase):
    attention_type = "scaled_dot"
    encoder_layer_types = ["self_attention", "self_attention"]


class BahdanauTransformerUpstreamTest(_Seq2SeqAttentionUpstreamTest, unittest.TestCase):
    attention_type = "bahdanau"
    encoder_layer_types = ["self_attention", "self_attention"]
    decoder_layer_types = ["self_attention", "self_attention"]


class ScaledDotTransformerUpstreamTest(_Seq2SeqAttentionUpstreamTest, unittest.TestCase):
    attention_type = "scaled_dot"
    encoder_layer_types = ["self_attention", "self_attention"]
    decoder_layer_types = ["self_attention", "self_attention"]


def test_upstream_folder_is_the_installed_version():
    """The mixins are written for one transformers version; say so loudly when they drift apart."""
    import transformers

    readme = (HF_TESTS_DIR / "README.md").read_text()
    assert transformers.__version__ in readme, (transformers.__version__, HF_TESTS_DIR)
    assert hf_attention.Seq2SeqAttentionConfig.model_type == "seq2seq_attention"
