"""`pipeline("translation")` for sequence-to-sequence LMs: text in, `{"translation_text": ...}` out.

transformers 5 removed its built-in translation pipeline. Importing `hf_attention` registers this one under the
task name "translation"; checkpoints carry a copy of this file (and their config names it in `custom_pipelines`), so
`pipeline("translation", model=CKPT, trust_remote_code=True)` works where the package is not installed. This module
imports only transformers: it must run on its own as remote code.
"""

import logging

from transformers import Pipeline

logger = logging.getLogger(__name__)


class TranslationPipeline(Pipeline):
    """Translate strings with `model.generate`; generation keywords (num_beams, max_new_tokens, ...) pass through.

    `translator("Ich habe Hunger.")` gives `[{"translation_text": ...}]`, a list of strings gives one dict per string.
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False

    def _sanitize_parameters(self, truncation=True, **generate_kwargs):
        return {"truncation": truncation}, generate_kwargs, {}

    def preprocess(self, text: str, truncation: bool = True) -> dict:
        if not isinstance(text, str):
            raise ValueError(f"TranslationPipeline translates strings, got {type(text).__name__}")
        limit = self.tokenizer.model_max_length
        # verbose=False: transformers' own warning names no input and is given once per tokenizer.
        length = len(self.tokenizer(text, verbose=False)["input_ids"])
        if truncation and length > limit:
            logger.warning(
                "the input %r%s has %d tokens, more than the tokenizer's model_max_length of %d: only its first %d "
                "tokens are translated",
                text[:50],
                "..." if len(text) > 50 else "",
                length,
                limit,
                limit,
            )
        return self.tokenizer(text, return_tensors="pt", truncation=truncation, verbose=False)

    def _forward(self, model_inputs: dict, **generate_kwargs) -> dict:
        return {"output_ids": self.model.generate(**model_inputs, **generate_kwargs)}

    def postprocess(self, model_outputs: dict) -> list[dict[str, str]]:
        texts = self.tokenizer.batch_decode(model_outputs["output_ids"], skip_special_tokens=True)
        return [{"translation_text": text} for text in texts]

    def __call__(self, inputs, **kwargs):
        results = super().__call__(inputs, **kwargs)
        # A list of sentences with one translation each: one dict per sentence, as transformers 4's pipeline gave.
        if isinstance(inputs, list) and all(len(result) == 1 for result in results):
            return [result[0] for result in results]
        return results
