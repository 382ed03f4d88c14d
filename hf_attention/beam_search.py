"""Beam search that takes a sentence out of the batch once its translations are final.

`GenerationMixin`'s beam search steps every sentence of a batch until the last one is done: a sentence whose
`num_beams` finished hypotheses can no longer be beaten keeps its rows in the batch, and every later step computes
the embedding, the RNN step, the attention and the output projection for them. `beam_search_dropping_finished` is a
decoding method for `generate(custom_generate=...)` that runs the same search, step for step through the library's
own beam-search helpers, and, after each step, drops the sentences that can no longer change from the cache, the
encoder outputs and the masks. It returns the sequences `generate` returns, with the same padding.

A sentence can no longer change once beam search's early-stop check holds for it (its best running hypothesis
cannot beat its worst finished one), or, with `early_stopping=True`, once it has `num_beams` finished hypotheses:
from then on `GenerationMixin._update_finished_beams` adds nothing to it.

Where a setting needs the whole batch at every step (sampling, scores or attentions in the output, a logits
processor or stopping criterion that indexes rows by their batch position), or is not beam search at all (one beam),
the decoding method `generate` would have chosen runs instead, unchanged.
"""

import torch
from transformers import GenerationMixin
from transformers.generation import logits_process, stopping_criteria
from transformers.generation.utils import ALL_CACHE_NAMES, GENERATION_MODES_MAPPING

# Processors and criteria that treat each row on its own, so that removing rows does not change the others.
ROW_WISE_LOGITS_PROCESSORS = (
    logits_process.MinLengthLogitsProcessor,
    logits_process.MinNewTokensLengthLogitsProcessor,
    logits_process.ForcedBOSTokenLogitsProcessor,
    logits_process.ForcedEOSTokenLogitsProcessor,
    logits_process.NoRepeatNGramLogitsProcessor,
    logits_process.RepetitionPenaltyLogitsProcessor,
    logits_process.NoBadWordsLogitsProcessor,
    logits_process.SequenceBiasLogitsProcessor,
    logits_process.SuppressTokensLogitsProcessor,
    logits_process.SuppressTokensAtBeginLogitsProcessor,
    logits_process.ExponentialDecayLengthPenalty,
    logits_process.InfNanRemoveLogitsProcessor,
)
ROW_WISE_STOPPING_CRITERIA = (
    stopping_criteria.MaxLengthCriteria,
    stopping_criteria.EosTokenCriteria,
    stopping_criteria.MaxTimeCriteria,
    stopping_criteria.StopStringCriteria,
)
# The keyword arguments of the decoding loop that hold one row per beam.
PER_ROW_MODEL_KWARGS = ("attention_mask", "decoder_attention_mask")


def can_drop_finished(generation_config, logits_processor, stopping_criteria) -> bool:
    """Whether `beam_search_dropping_finished` may take finished sentences out of the batch for these settings."""
    return (
        generation_config.num_beams > 1
        and not generation_config.do_sample
        and not generation_config.return_dict_in_generate
        and all(isinstance(processor, ROW_WISE_LOGITS_PROCESSORS) for processor in logits_processor)
        and all(isinstance(criterion, ROW_WISE_STOPPING_CRITERIA) for criterion in stopping_criteria)
    )


def _select_model_kwargs_rows(model_kwargs: dict, rows: torch.Tensor) -> None:
    """Keep only `rows` (1-D, indices into the current rows) of every per-row tensor the decoding loop carries."""
    for name in PER_ROW_MODEL_KWARGS:
        if model_kwargs.get(name) is not None:
            model_kwargs[name] = model_kwargs[name].index_select(0, rows)
    encoder_outputs = model_kwargs.get("encoder_outputs")
    if encoder_outputs is not None:
        for key, value in encoder_outputs.items():
            if isinstance(value, torch.Tensor):
                encoder_outputs[key] = value.index_select(0, rows)
            elif isinstance(value, tuple):
                encoder_outputs[key] = tuple(tensor.index_select(0, rows) for tensor in value)


def beam_search_dropping_finished(
    model: GenerationMixin,
    input_ids: torch.LongTensor,
    logits_processor,
    stopping_criteria,
    generation_config,
    **model_kwargs,
) -> torch.LongTensor:
    """Beam search as `GenerationMixin._beam_search`, computing only the sentences whose result can still change.

    Pass it as `model.generate(..., num_beams=5, custom_generate=beam_search_dropping_finished)`; `generate`
    prepares the inputs and calls it with them.

    Args:
        model: the model `generate` was called on.
        input_ids: [batch * num_beams, prompt_len], the decoder prompt, each sentence's rows next to each other.
        logits_processor: the `LogitsProcessorList` `generate` prepared.
        stopping_criteria: the `StoppingCriteriaList` `generate` prepared.
        generation_config: the `GenerationConfig` `generate` prepared.
        model_kwargs: the rest of what `generate` prepared: `encoder_outputs` (each tensor [batch * num_beams,
            ...]), `attention_mask` [batch * num_beams, src_len], the cache, `use_cache`.

    Returns:
        [batch * num_return_sequences, prompt_len + generated], the best hypotheses of each sentence, best first,
        padded as `generate` pads them.
    """
    if not can_drop_finished(generation_config, logits_processor, stopping_criteria):
        # The decoding method generate would have chosen itself (greedy search for one beam, ...).
        mode = generation_config.get_generation_mode()
        if "/" in GENERATION_MODES_MAPPING[mode]:
            raise ValueError(f"{mode.value} runs from the Hub in transformers; call generate without custom_generate")
        decoding_method = getattr(GenerationMixin, GENERATION_MODES_MAPPING[mode])
        return decoding_method(
            model, input_ids, logits_processor, stopping_criteria, generation_config, **model_kwargs
        )
    eos_token_id = generation_config._eos_token_tensor
    pad_token_id = generation_config._pad_token_tensor
    early_stopping = generation_config.early_stopping
    length_penalty = generation_config.length_penalty
    max_length = generation_config.max_length
    num_beams = generation_config.num_beams
    num_return_sequences = generation_config.num_return_sequences
    device = input_ids.device

    batch_size = input_ids.shape[0] // num_beams
    prompt_len = cur_len = input_ids.shape[1]
    n_eos_tokens = eos_token_id.shape[0] if eos_token_id is not None else 0
    beams_to_keep = max(2, 1 + n_eos_tokens) * num_beams
    top_num_beam_mask = torch.arange(beams_to_keep, device=device) < num_beams
    fill_value = pad_token_id or eos_token_id[0] if eos_token_id is not None else -1

    # One entry per sentence still in the batch (`active` maps it to its place in the input), as in _beam_search.
    active = torch.arange(batch_size, device=device)
    running_sequences = torch.full((batch_size, num_beams, max_length), fill_value, dtype=torch.int64, device=device)
    running_sequences[:, :, :cur_len] = input_ids.view(batch_size, num_beams, cur_len)
    sequences = running_sequences.clone()
    running_beam_scores = torch.zeros((batch_size, num_beams), dtype=torch.float, device=device)
    running_beam_scores[:, 1:] = -1e9
    beam_scores = torch.full((batch_size, num_beams), -1e9, dtype=torch.float, device=device)
    is_sent_finished = torch.zeros((batch_size, num_beams), dtype=torch.bool, device=device)
    is_early_stop_heuristic_unsatisfied = torch.ones((batch_size, 1), dtype=torch.bool, device=device)
    running_beam_indices = torch.full(
        (batch_size, num_beams, max_length - cur_len), -1, dtype=torch.int32, device=device
    )
    beam_indices = running_beam_indices.clone()
    # Where each sentence's final hypotheses go when it leaves the batch.
    final_sequences = sequences[:, :num_return_sequences].clone()
    final_beam_indices = beam_indices[:, :num_return_sequences].clone()

    model_outputs = model._prefill(input_ids, generation_config, model_kwargs, is_first_iteration=True)
    while True:
        num_active = active.shape[0]
        flat_running_sequences = running_sequences[:, :, :cur_len].reshape(num_active * num_beams, cur_len)
        if model_outputs is None:
            next_sequence_length = 1 if model_kwargs["use_cache"] else None
            model_inputs = model.prepare_inputs_for_generation(
                flat_running_sequences, next_sequence_length=next_sequence_length, **model_kwargs
            )
            model_outputs = model(**model_inputs, return_dict=True)
        model_kwargs = model._update_model_kwargs_for_generation(
            model_outputs, model_kwargs, is_encoder_decoder=model.config.is_encoder_decoder
        )
        logits = model_outputs.logits[:, -1, :].to(copy=True, dtype=torch.float32, device=device)
        model_outputs = None

        log_probs = logits_processor(flat_running_sequences, torch.nn.functional.log_softmax(logits, dim=-1))
        log_probs = log_probs.view(num_active, num_beams, -1) + running_beam_scores[:, :, None]
        topk_log_probs, topk_running_sequences, topk_running_beam_indices = model._get_top_k_continuations(
            accumulated_log_probs=log_probs.view(num_active, -1),
            running_sequences=running_sequences,
            running_beam_indices=running_beam_indices,
            cur_len=cur_len,
            decoder_prompt_len=prompt_len,
            do_sample=False,
            beams_to_keep=beams_to_keep,
            num_beams=num_beams,
            batch_size=num_active,
        )
        next_token_hits_stopping_criteria = stopping_criteria(
            topk_running_sequences[:, :, : cur_len + 1].reshape(num_active * beams_to_keep, cur_len + 1), None
        ).view(num_active, beams_to_keep)
        running_sequences, running_beam_scores, running_beam_indices = model._get_running_beams_for_next_iteration(
            topk_log_probs=topk_log_probs,
            topk_running_sequences=topk_running_sequences,
            topk_running_beam_indices=topk_running_beam_indices,
            next_token_hits_stopping_criteria=next_token_hits_stopping_criteria,
            num_beams=num_beams,
        )
        sequences, beam_scores, beam_indices, is_sent_finished = model._update_finished_beams(
            sequences=sequences,
            topk_running_sequences=topk_running_sequences,
            beam_scores=beam_scores,
            topk_log_probs=topk_log_probs,
            beam_indices=beam_indices,
            topk_running_beam_indices=topk_running_beam_indices,
            is_early_stop_heuristic_unsatisfied=is_early_stop_heuristic_unsatisfied,
            is_sent_finished=is_sent_finished,
            next_token_hits_stopping_criteria=next_token_hits_stopping_criteria,
            top_num_beam_mask=top_num_beam_mask,
            num_beams=num_beams,
            cur_len=cur_len,
            decoder_prompt_len=prompt_len,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
        )
        # Rows of the next step: each kept beam's parent row, in the current layout.
        beam_idx = running_beam_indices[..., cur_len - prompt_len].long()
        cur_len += 1
        is_early_stop_heuristic_unsatisfied = model._check_early_stop_heuristic(
            is_early_stop_heuristic_unsatisfied=is_early_stop_heuristic_unsatisfied,
            running_beam_scores=running_beam_scores,
            beam_scores=beam_scores,
            is_sent_finished=is_sent_finished,
            cur_len=cur_len,
            max_length=max_length,
            decoder_prompt_len=prompt_len,
            early_stopping=early_stopping,
            length_penalty=length_penalty,
        )
        is_final = ~is_early_stop_heuristic_unsatisfied[:, 0]
        if early_stopping is True:
            is_final |= is_sent_finished.all(dim=-1)
        if next_token_hits_stopping_criteria.all():  # every continuation stopped (max_length): so does the search
            is_final[:] = True
        final_sequences[active[is_final]] = sequences[is_final, :num_return_sequences]
        final_beam_indices[active[is_final]] = beam_indices[is_final, :num_return_sequences]
        if is_final.all():
            break

        keep = (~is_final).nonzero().squeeze(1)
        cache = next((model_kwargs[name] for name in ALL_CACHE_NAMES if model_kwargs.get(name) is not None), None)
        if keep.shape[0] < num_active:
            # The beams' rows are numbered sentence * num_beams + beam; renumber them for the sentences kept.
            kept_rows = (keep[:, None] * num_beams + torch.arange(num_beams, device=device)).flatten()
            _select_model_kwargs_rows(model_kwargs, kept_rows)
            if cache is not None:
                cache.reorder_cache(beam_idx[keep].flatten())
            active, running_sequences, running_beam_scores, running_beam_indices = (
                tensor[keep] for tensor in (active, running_sequences, running_beam_scores, running_beam_indices)
            )
            sequences, beam_scores, beam_indices, is_sent_finished = (
                tensor[keep] for tensor in (sequences, beam_scores, beam_indices, is_sent_finished)
            )
            is_early_stop_heuristic_unsatisfied = is_early_stop_heuristic_unsatisfied[keep]
        elif cache is not None:
            cache.reorder_cache(beam_idx.flatten())

    # As _beam_search: crop to the longest returned hypothesis.
    generated = (final_beam_indices >= 0).sum(dim=-1).max()
    return final_sequences[:, :, : prompt_len + generated].reshape(batch_size * num_return_sequences, -1)
