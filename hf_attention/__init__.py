"""hf-attention: the attentional RNN encoder-decoder of neural machine translation as a transformers model.

Importing the package registers `Seq2SeqAttentionConfig` with `AutoConfig` and the models with `AutoModel` and
`AutoModelForSeq2SeqLM`, and marks them for `save_pretrained` to write `auto_map` and the code files, so that
checkpoints also load with `trust_remote_code=True` where the package is not installed. It also registers
`pipeline("translation")` (see `pipeline_seq2seq_attention.py`).
"""

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM
from transformers.pipelines import PIPELINE_REGISTRY, REMOVED_TASKS

from .attention import MultiHeadAttention, additive_scores
from .cache_seq2seq_attention import Seq2SeqAttentionCache, Seq2SeqAttentionLayerCache
from .configuration_seq2seq_attention import ATTENTION_TYPES, RNN_TYPES, Seq2SeqAttentionConfig
from .modeling_seq2seq_attention import (
    Seq2SeqAttentionForConditionalGeneration,
    Seq2SeqAttentionModel,
    Seq2SeqAttentionPreTrainedModel,
    shift_tokens_right,
)
from .pipeline_seq2seq_attention import TranslationPipeline

__version__ = "0.1.0"

AutoConfig.register(Seq2SeqAttentionConfig.model_type, Seq2SeqAttentionConfig, exist_ok=True)
AutoModel.register(Seq2SeqAttentionConfig, Seq2SeqAttentionModel, exist_ok=True)
AutoModelForSeq2SeqLM.register(Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration, exist_ok=True)
Seq2SeqAttentionConfig.register_for_auto_class()
Seq2SeqAttentionModel.register_for_auto_class("AutoModel")
Seq2SeqAttentionForConditionalGeneration.register_for_auto_class("AutoModelForSeq2SeqLM")
# transformers 5 removed the "translation" task (REMOVED_TASKS makes pipeline() refuse the name before looking at the
# registry); this package brings it back for sequence-to-sequence LMs.
REMOVED_TASKS.pop("translation", None)
PIPELINE_REGISTRY.register_pipeline("translation", pipeline_class=TranslationPipeline, pt_model=AutoModelForSeq2SeqLM)

__all__ = [
    "ATTENTION_TYPES",
    "RNN_TYPES",
    "MultiHeadAttention",
    "Seq2SeqAttentionCache",
    "Seq2SeqAttentionConfig",
    "Seq2SeqAttentionForConditionalGeneration",
    "Seq2SeqAttentionLayerCache",
    "Seq2SeqAttentionModel",
    "Seq2SeqAttentionPreTrainedModel",
    "TranslationPipeline",
    "additive_scores",
    "shift_tokens_right",
]
