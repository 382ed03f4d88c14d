"""The attention explorer: a Gradio page that translates a sentence and shows where every attention head looks.

    python scripts/explore.py --model outputs/demo      # app.py serves the same page as a Hub Space

The page serves the checkpoints it was started with and no other: `Explorer` loads them all up front, and a
visitor's pick is looked up among them by name, never on the file system or the Hub.

The functions below the page builder are plain Python (tensors in, tables and Plotly figures out), so the tests
compare them with `translation.align` / `translate`. Gradio and Plotly are the optional `app` extra
(`pip install 'hf-attention[app]'`); nothing else in the package imports this module.
"""

import html
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go
import torch
from huggingface_hub import ModelCard
from plotly.subplots import make_subplots

from .checkpoint_loading import Checkpoint, CheckpointError, load_checkpoint
from .translation import Alignment, alignment_from_outputs, warn_about_truncation

logger = logging.getLogger(__name__)

# German sentences that are not in the default corpus (Debian's trans-de-en; the tests check).
EXAMPLES = [
    "Der Zug nach Berlin hat heute zwanzig Minuten Verspätung.",
    "Meine Schwester liest gern Bücher über alte Schiffe.",
    "Kannst du mir bitte das Salz geben?",
    "Wir haben gestern im Garten einen kleinen Igel gesehen.",
    "Das Museum ist am Montag geschlossen.",
]
# Longer input is refused: a page of text would come back as the translation of its first tokens only.
MAX_SENTENCE_CHARACTERS = 1000
DECODING_STRATEGIES = ("greedy", "beam search", "sampling")
WORD_START = "▁"  # the Metaspace marker of this package's tokenizers (tokenization.py)
# Lines weaker than this are left out of the line views: they would be invisible, and each line is a trace.
WEAKEST_LINE = 0.02
# Heatmap panels side by side: more would shrink each below a readable size on a laptop screen.
HEATMAP_COLUMNS = 3
# The decoding sliders' (low, high); the server holds API callers to them too, as Gradio lets NaN past its bounds.
SETTING_RANGES = {
    "num_beams": (1, 10),
    "length_penalty": (0.0, 2.0),
    "temperature": (0.1, 2.0),
    "top_k": (0, 100),
    "top_p": (0.1, 1.0),
    "max_new_tokens": (4, 128),
}
WHOLE_SETTINGS = ("num_beams", "top_k", "max_new_tokens")
# Characters that Markdown (with GitHub's extensions and Gradio's LaTeX) could read as markup.
MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-.!|~$:@=^")


class ExplorerError(Exception):
    """Something the page reports to its user as a message (bad input, a checkpoint that does not load)."""


@dataclass
class Hypothesis:
    """One output of `generate`: `token_ids` are the labels (no decoder start token, no padding; the end-of-sentence
    token kept), as `align` takes them; `score` is generate's `sequences_scores` (beam search: the sum of the token
    log-probabilities divided by length ** length_penalty), None for greedy decoding and sampling."""

    token_ids: list[int]
    text: str
    score: float | None


@dataclass
class Explanation:
    """Everything the page shows of one hypothesis, from one teacher-forced pass over its tokens.

    alignment: `translation.Alignment` (weights: [layers, heads, tgt_len, src_len]; encoder_self_attention:
        [self-attention layers, heads, src_len, src_len]; decoder_self_attention: [self-attention layers, heads,
        tgt_len, tgt_len]).
    token_probabilities: [tgt_len], p(y_i | y_<i, x) of each of the hypothesis's own tokens.
    """

    alignment: Alignment
    token_probabilities: torch.Tensor


def escape_markdown(value) -> str:
    """`value` as literal text in gr.Markdown, on one line: HTML's special characters as entities, Markdown's
    behind a backslash (strings from a checkpoint, such as a model card's metric names, are not the page's markup)."""
    escaped = []
    for character in " ".join(str(value).splitlines()):
        if character in "&<>\"'":
            character = html.escape(character)
        elif character in MARKDOWN_SPECIAL:
            character = "\\" + character
        escaped.append(character)
    return "".join(escaped)


def check_sentence(sentence: str | None) -> str:
    """`sentence` stripped; raises ExplorerError for an empty one or one over `MAX_SENTENCE_CHARACTERS`."""
    if sentence is not None and not isinstance(sentence, str):
        raise ExplorerError("The sentence must be text.")
    sentence = (sentence or "").strip()
    if not sentence:
        raise ExplorerError("Type a sentence to translate (or pick an example).")
    if len(sentence) > MAX_SENTENCE_CHARACTERS:
        raise ExplorerError(
            f"The sentence has {len(sentence):,} characters, more than the {MAX_SENTENCE_CHARACTERS:,} this page "
            "takes: translate one sentence at a time."
        )
    return sentence


def load_model(name: str, device: str = "cpu") -> Checkpoint:
    """`load_checkpoint` of a checkpoint folder or Hub id; raises ExplorerError with its one-line reason."""
    name = (name or "").strip()
    if not name:
        raise ExplorerError("Give a checkpoint folder or Hub id.")
    try:
        return load_checkpoint(name, device)
    except (CheckpointError, OSError) as error:  # OSError: a name the file system refuses (too long, say)
        raise ExplorerError(str(error).strip().splitlines()[0]) from error


def _setting(name: str, value) -> float | int:
    # Whole numbers may arrive as floats (5.0) from a slider; NaN, None and text do not pass.
    low, high = SETTING_RANGES[name]
    whole = name in WHOLE_SETTINGS
    number = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not number or not low <= value <= high or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise ExplorerError(f"{name}={value!r}: expected {kind} from {low} to {high}")
    return int(value) if whole else float(value)


def decoding_settings(
    strategy: str,
    num_beams: int = 5,
    length_penalty: float = 1.0,
    temperature: float = 1.0,
    top_k: int = 50,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
) -> dict:
    """The `generate` keyword arguments of one of `DECODING_STRATEGIES`; beam search returns every beam (n-best).

    Raises ExplorerError for an unknown strategy or a setting outside `SETTING_RANGES` (the page's sliders); all
    settings are checked, used by the strategy or not, as the page sends them all.
    """
    if strategy not in DECODING_STRATEGIES:
        raise ExplorerError(f"Unknown decoding strategy {strategy!r}: expected one of {DECODING_STRATEGIES}")
    given = {"num_beams": num_beams, "length_penalty": length_penalty, "temperature": temperature, "top_k": top_k,
             "top_p": top_p, "max_new_tokens": max_new_tokens}  # fmt: skip
    checked = {name: _setting(name, value) for name, value in given.items()}
    settings = {"max_new_tokens": checked["max_new_tokens"], "num_beams": 1, "do_sample": False}
    if strategy == "beam search":
        beams = checked["num_beams"]
        settings.update(num_beams=beams, num_return_sequences=beams, length_penalty=checked["length_penalty"])
    elif strategy == "sampling":
        settings.update(do_sample=True, **{name: checked[name] for name in ("temperature", "top_k", "top_p")})
    return settings


def _as_list(token_ids) -> list[int]:
    # Generation configs give eos_token_id as one id, a list of ids or None.
    return [] if token_ids is None else [token_ids] if isinstance(token_ids, int) else list(token_ids)


def _source_inputs(model, tokenizer, sentence: str) -> dict:
    # Tokenized as align does: one row, truncated to model_max_length.
    return tokenizer([sentence], return_tensors="pt", truncation=True).to(model.device)


@torch.no_grad()
def generate_hypotheses(model, tokenizer, sentence: str, **generate_kwargs) -> list[Hypothesis]:
    """The outputs of `generate` for `sentence`, best first (one for greedy decoding and sampling, the n-best list
    for beam search with `num_return_sequences`), each with its token ids as `align` takes labels: no decoder
    start token, up to the first end token, no padding."""
    model.eval()
    warn_about_truncation(tokenizer, [sentence], [0])
    inputs = _source_inputs(model, tokenizer, sentence)
    output = model.generate(**inputs, **generate_kwargs, output_scores=True, return_dict_in_generate=True)
    scores = getattr(output, "sequences_scores", None)
    start, pad = model.config.decoder_start_token_id, model.config.pad_token_id
    ends = set(_as_list(model.generation_config.eos_token_id) or _as_list(model.config.eos_token_id))
    hypotheses = []
    for row, generated in enumerate(output.sequences):
        labels = generated[1:] if generated[0].item() == start else generated
        # The n-best rows are filled up to the longest with end tokens or padding: keep up to the first end token.
        ids = labels.tolist()
        cut = next((position + 1 for position, token in enumerate(ids) if token in ends), len(ids))
        labels = labels[:cut]
        labels = labels[labels != pad]
        hypotheses.append(
            Hypothesis(
                token_ids=labels.tolist(),
                text=tokenizer.decode(labels, skip_special_tokens=True),
                score=None if scores is None else scores[row].item(),
            )
        )
    return hypotheses


@torch.no_grad()
def explain(model, tokenizer, sentence: str, token_ids: list[int]) -> Explanation:
    """The attention weights and token probabilities of the hypothesis `token_ids` (labels, as in `Hypothesis`).

    The same teacher-forced pass as `translation.align` (which takes a target text, not token ids: decoding and
    re-tokenizing a hypothesis need not give its ids back), plus the probabilities from its logits.
    """
    model.eval()
    inputs = _source_inputs(model, tokenizer, sentence)
    labels = torch.tensor([token_ids], device=model.device)
    outputs = model(**inputs, labels=labels, output_attentions=True)
    probabilities = outputs.logits[0].float().softmax(dim=-1).gather(-1, labels[0, :, None])[:, 0].cpu()
    return Explanation(alignment_from_outputs(tokenizer, inputs["input_ids"][0], labels[0], outputs), probabilities)


def word_groups(tokens: list[str], special_tokens: set[str] = frozenset()) -> list[tuple[str, list[int]]]:
    """The words of a subword sequence as (word, token positions): a word starts at a token beginning with "▁"
    (Metaspace) and at the token after a special token; a special token is a word of its own."""
    groups = []
    for position, token in enumerate(tokens):
        starts = not groups or token.startswith(WORD_START) or token in special_tokens
        starts = starts or tokens[position - 1] in special_tokens
        if starts:
            groups.append((token, [position]))
        else:
            word, positions = groups[-1]
            groups[-1] = (word + token, positions + [position])
    return [(word.removeprefix(WORD_START) or word, positions) for word, positions in groups]


def merge_to_words(
    weights: torch.Tensor, query_tokens: list[str], key_tokens: list[str], special_tokens: set[str] = frozenset()
) -> tuple[torch.Tensor, list[str], list[str]]:
    """Attention between whole words: the weight a query word gives a key word is the SUM over the key word's
    pieces (the attention that lands anywhere in the word) of the AVERAGE over the query word's pieces (each piece
    of a target word asks once); rows still sum to 1.

    Args:
        weights: [..., query_len, key_len] (cross attention: queries are target tokens, keys source tokens).
        query_tokens, key_tokens: the `query_len` and `key_len` subword tokens.

    Returns:
        [..., query_words, key_words] weights, the query words and the key words.
    """
    queries, keys = word_groups(query_tokens, special_tokens), word_groups(key_tokens, special_tokens)
    averaging = torch.zeros(len(queries), len(query_tokens))
    for row, (_, positions) in enumerate(queries):
        averaging[row, positions] = 1.0 / len(positions)
    summing = torch.zeros(len(key_tokens), len(keys))
    for column, (_, positions) in enumerate(keys):
        summing[positions, column] = 1.0
    merged = averaging @ weights.float() @ summing
    return merged, [word for word, _ in queries], [word for word, _ in keys]


def attention_views(
    weights: torch.Tensor, query_tokens: list[str], key_tokens: list[str], merge: bool, special_tokens=frozenset()
) -> tuple[torch.Tensor, list[str], list[str]]:
    """`weights` ([layers, heads, query_len, key_len]) and the labels as the page shows them: per subword, or per
    word with `merge` (`merge_to_words`)."""
    if merge:
        return merge_to_words(weights, query_tokens, key_tokens, special_tokens)
    return weights.float(), list(query_tokens), list(key_tokens)


def plotly_text(labels: list[str]) -> list[str]:
    """`labels` escaped for Plotly, which reads its text as HTML: a token "</s>" would otherwise vanish and break
    the figure's layout."""
    return [html.escape(label) for label in labels]


def heatmap_figure(
    weights: torch.Tensor, query_labels: list[str], key_labels: list[str], title: str, layer_names=None
) -> go.Figure:
    """One heatmap per layer and head, then the heads' average, `HEATMAP_COLUMNS` to a row (a layer starts a new
    row): keys on the x axis, queries on the y axis; hovering a cell shows both tokens and the weight. The figure
    takes the page's width.

    Args:
        weights: [layers, heads, query_len, key_len].
        layer_names: one name per layer for the panel titles (default "layer 0", "layer 1", ...).
    """
    layers, heads = weights.shape[:2]
    layer_names = layer_names or [f"layer {layer}" for layer in range(layers)]
    query_labels, key_labels = plotly_text(query_labels), plotly_text(key_labels)
    averaged = torch.cat([weights, weights.mean(dim=1, keepdim=True)], dim=1) if heads > 1 else weights
    panels = averaged.shape[1]
    columns = min(panels, HEATMAP_COLUMNS)
    rows_per_layer = -(-panels // columns)
    rows = layers * rows_per_layer
    titles = [""] * (rows * columns)
    for layer in range(layers):
        for head in range(panels):
            index = (layer * rows_per_layer + head // columns) * columns + head % columns
            titles[index] = f"{layer_names[layer]}, " + ("heads averaged" if head == heads else f"head {head}")
    # Fixed pixels per query row and between rows (titles, tick labels); spacing is a fraction of the plot area.
    panel_height, gap, top, bottom = max(140, 20 * len(query_labels)), 120, 80, 90
    area = rows * panel_height + (rows - 1) * gap
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.04,
                           vertical_spacing=gap / area if rows > 1 else 0.0)  # fmt: skip
    # Positions, not labels, on the axes: a repeated token ("the", ".") would otherwise share one row or column.
    hover = [[[query, key] for key in key_labels] for query in query_labels]
    for layer in range(layers):
        for head in range(panels):
            place = {"row": layer * rows_per_layer + head // columns + 1, "col": head % columns + 1}
            heatmap = go.Heatmap(
                z=averaged[layer, head].tolist(),
                customdata=hover,
                hovertemplate="%{customdata[0]} → %{customdata[1]}: %{z:.3f}<extra></extra>",
                coloraxis="coloraxis",
            )
            figure.add_trace(heatmap, **place)
            figure.update_xaxes(tickvals=list(range(len(key_labels))), ticktext=key_labels, tickangle=-60, **place)
            figure.update_yaxes(tickvals=list(range(len(query_labels))), ticktext=query_labels, autorange="reversed",
                                showticklabels=place["col"] == 1, **place)  # fmt: skip
    figure.update_layout(
        title=title,
        coloraxis={"colorscale": "Greys", "cmin": 0.0, "cmax": 1.0, "colorbar": {"title": {"text": "weight"}}},
        height=area + top + bottom,
        margin={"l": 90, "r": 20, "t": top, "b": bottom},
    )
    return figure


def lines_figure(weights: torch.Tensor, query_labels: list[str], key_labels: list[str], title: str) -> go.Figure:
    """The alignment as lines from each key word (top row: the source) to each query word (bottom row: the output),
    darker and wider for a larger weight, as Bahdanau et al. read their Figure 3; lines under `WEAKEST_LINE` are
    left out. Hovering a line shows its words and weight.

    Args:
        weights: [query_len, key_len], one layer and head (or their average).
    """

    def spread(count):
        return [0.5] if count == 1 else [index / (count - 1) for index in range(count)]

    query_labels, key_labels = plotly_text(query_labels), plotly_text(key_labels)
    key_x, query_x = spread(len(key_labels)), spread(len(query_labels))
    figure = go.Figure()
    for query, row in enumerate(weights.tolist()):
        for key, weight in enumerate(row):
            if weight < WEAKEST_LINE:
                continue
            figure.add_trace(
                go.Scatter(
                    x=[key_x[key], query_x[query]],
                    y=[1, 0],
                    mode="lines",
                    line={"width": 1 + 5 * weight, "color": f"rgba(20, 60, 160, {weight:.3f})"},
                    hovertemplate=f"{key_labels[key]} → {query_labels[query]}: {weight:.3f}<extra></extra>",
                    showlegend=False,
                )
            )
    for labels, xs, y, side in ((key_labels, key_x, 1, "top center"), (query_labels, query_x, 0, "bottom center")):
        words = go.Scatter(x=xs, y=[y] * len(xs), mode="markers+text", text=labels, textposition=side)
        figure.add_trace(words.update(marker={"size": 5, "color": "black"}, hoverinfo="text", showlegend=False))
    figure.update_xaxes(visible=False, range=[-0.08, 1.08])
    figure.update_yaxes(visible=False, range=[-0.3, 1.3])
    # No width: the figure takes the page's, so that long sentences spread out and the title is not cut.
    figure.update_layout(title=title, height=320, plot_bgcolor="white", margin={"l": 20, "r": 20, "t": 60, "b": 20})
    return figure


def select_head(weights: torch.Tensor, layer: int, head: int, layer_names=None) -> tuple[torch.Tensor, str]:
    """One map of `weights` ([layers, heads, query_len, key_len]): `layer` (-1 or out of range: the top one) and
    `head` (-1 or out of range: the average of the heads); returns it ([query_len, key_len]) and its name, with
    `layer_names` (one per layer) naming the layer."""
    layers, heads = weights.shape[:2]
    layer = layers - 1 if layer < 0 or layer >= layers else layer
    name = layer_names[layer] if layer_names else f"layer {layer}"
    if head < 0 or head >= heads:
        return weights[layer].mean(dim=0), f"{name}, heads averaged"
    return weights[layer, head], f"{name}, head {head}"


def probability_rows(explanation: Explanation) -> list[list]:
    """[position, target token, probability] per output token, the probability rounded to 4 places."""
    tokens, probabilities = explanation.alignment.target_tokens, explanation.token_probabilities.tolist()
    pairs = zip(tokens, probabilities, strict=True)
    return [[position, token, round(probability, 4)] for position, (token, probability) in enumerate(pairs)]


def hypothesis_rows(hypotheses: list[Hypothesis]) -> list[list]:
    """[rank, translation, score] per hypothesis; the score is empty where `generate` gives none."""
    return [
        [rank, hypothesis.text, "" if hypothesis.score is None else round(hypothesis.score, 4)]
        for rank, hypothesis in enumerate(hypotheses)
    ]


def card_scores(name: str) -> list[str]:
    """The test scores a checkpoint reports: the model card's (README.md, model-index) results, else the folder's
    test_results.json (which the training writes); empty when there are none."""
    folder = Path(name).expanduser()
    try:
        card = ModelCard.load(folder / "README.md" if folder.is_dir() else name)
        results = card.data.eval_results or []
    except Exception as error:  # noqa: BLE001  (no card, offline, or a card without results: say nothing)
        logger.info("no model card results for %s: %s", name, error)
        results = []
    scores = [f"{result.metric_name or result.metric_type} {result.metric_value} ({result.dataset_name})"
              for result in results]  # fmt: skip
    test_results = folder / "test_results.json"
    if not scores and test_results.is_file():
        test = json.loads(test_results.read_text())
        scores = [f"{metric} {test[f'test_{metric.lower()}']:.2f} (test split, test_results.json)"
                  for metric in ("BLEU", "chrF") if f"test_{metric.lower()}" in test]  # fmt: skip
    return scores


def layer_types(config) -> tuple[list[str], list[str]]:
    """The encoder's and the decoder's layer types ("rnn" or "self_attention"), bottom to top."""
    default = ["rnn"] * config.num_hidden_layers
    encoder = getattr(config, "encoder_layer_types", None) or default
    decoder = getattr(config, "decoder_layer_types", None) or default
    return list(encoder), list(decoder)


def layer_names(config) -> dict[str, list[str]]:
    """Per attention kind, the name of each layer its weights come from: every decoder layer has cross attention;
    the self-attention weights come from the self-attention layers only, named by their place in the stack."""
    encoder, decoder = layer_types(config)
    return {
        "cross": [f"decoder layer {layer}" for layer in range(len(decoder))],
        "encoder_self": [f"encoder layer {layer}" for layer, kind in enumerate(encoder) if kind == "self_attention"],
        "decoder_self": [f"decoder layer {layer}" for layer, kind in enumerate(decoder) if kind == "self_attention"],
    }


def describe_model(checkpoint: Checkpoint, name: str) -> str:
    """Markdown: the checkpoint's attention type, layers, heads and sizes, and its reported test scores. Every
    string from the checkpoint or its name goes through `escape_markdown`: a model card is not the page's markup."""
    config, text = checkpoint.config, escape_markdown
    encoder, decoder = layer_types(config)
    rnn = config.rnn_type.upper()
    cross = f"<code>{text(config.attention_type)}</code>, {text(config.num_attention_heads)} heads"
    if config.attention_type == "none":
        cross = "<code>none</code> (one fixed context for every output word: no alignment)"
    lines = [
        f"**Model** <code>{text(name)}</code>",
        f"- cross attention: {cross}",
        f"- encoder layers: {text(', '.join(rnn if kind == 'rnn' else kind for kind in encoder))}",
        f"- decoder layers: {text(', '.join(rnn if kind == 'rnn' else kind for kind in decoder))}",
        f"- hidden size {text(config.hidden_size)}, vocabulary {text(config.vocab_size)}, "
        f"{sum(parameter.numel() for parameter in checkpoint.model.parameters()):,} parameters",
    ]
    if "self_attention" in encoder + decoder:
        kind = getattr(config, "self_attention_type", None) or config.attention_type
        lines.insert(2, f"- self-attention: <code>{text(kind)}</code>, {text(config.num_attention_heads)} heads")
    scores = card_scores(checkpoint.path)
    lines.append("- reported scores: " + ("; ".join(map(text, scores)) if scores else "none in the model card"))
    return "\n".join(lines)


NO_ALIGNMENT = (
    'This model has no alignment to show: with `attention_type="none"` the decoder gets one fixed context (the '
    "mean encoder state) for every output word, so no output word looks at any source word."
)
NO_ENCODER = "This model's encoder has no self-attention layer."
NO_DECODER = "This model's decoder has no self-attention layer."


def render(explanation: Explanation, special_tokens: set[str], merge: bool, layer: int, head: int, names=None) -> dict:
    """The page's views of one hypothesis: per attention (cross, encoder_self, decoder_self) a note, a heatmap
    figure and a line figure (None where the model has no such attention), and the probability rows.

    `layer` and `head` pick the line view's map among the layers of that attention (-1: the top one; the heads'
    average); `names` (`layer_names`) names the layers in the titles.
    """
    alignment = explanation.alignment
    source, target = alignment.source_tokens, alignment.target_tokens
    names = names or {}
    kinds = {
        "cross": (alignment.weights, target, source, "cross attention (source → output)", NO_ALIGNMENT),
        "encoder_self": (alignment.encoder_self_attention, source, source, "encoder self-attention", NO_ENCODER),
        "decoder_self": (alignment.decoder_self_attention, target, target, "decoder self-attention", NO_DECODER),
    }
    views = {"probabilities": probability_rows(explanation)}
    for kind, (weights, queries, keys, name, absent) in kinds.items():
        if weights is None:
            views[kind] = (absent, None, None)
            continue
        shown, query_labels, key_labels = attention_views(weights, queries, keys, merge, special_tokens)
        kind_names = names.get(kind) if len(names.get(kind) or ()) == len(shown) else None
        one_map, which = select_head(shown, layer, head, kind_names)
        unit = "words" if merge else "subwords"
        views[kind] = (
            f"{name} per {unit[:-1]}: rows are queries, columns keys; each row sums to 1 (hover: the weight).",
            heatmap_figure(shown, query_labels, key_labels, f"{name}, {unit}", kind_names),
            lines_figure(one_map, query_labels, key_labels, f"{name}, {which}: keys on top, queries below"),
        )
    return views


class Explorer:
    """The state of one running page: the checkpoints it serves, loaded once up front and shared by every visitor.

    `models`: checkpoint folders or Hub ids, each loaded (and checked) here, so that a bad one stops the start, not a
    visitor. They are the page's only models: `get` looks a visitor's pick up among their names, and refuses any
    other with one message whatever it is, so that the page says nothing of which paths exist on the server.
    """

    def __init__(self, models: list[str] | str, device: str = "cpu"):
        models = [models] if isinstance(models, str) else models  # one name, not its characters
        names = list(dict.fromkeys(name.strip() for name in models if name and name.strip()))
        if not names:
            raise ExplorerError("Give at least one checkpoint to serve (a folder or Hub id).")
        self.device = device
        self.models = {}
        for name in names:
            checkpoint = load_model(name, device)
            self.models[name] = (checkpoint.model, checkpoint.tokenizer, describe_model(checkpoint, name))
        self.refusal = "This page serves only the models in its list: " + ", ".join(names) + "."

    @property
    def names(self) -> list[str]:
        """The served checkpoints' names, in the order given."""
        return list(self.models)

    def get(self, name: str):
        """(model, tokenizer, description) of the served checkpoint `name`; ExplorerError for any other name."""
        # A dictionary look-up only: a visitor's string never reaches the file system or the Hub.
        served = self.models.get(name) if isinstance(name, str) else None
        if served is None:
            raise ExplorerError(self.refusal)
        return served

    def describe(self, name: str) -> str:
        """The model's description, or the refusal (as the page shows it)."""
        try:
            return self.get(name)[2]
        except ExplorerError as error:
            return f"**{escape_markdown(error)}**"

    def translate(self, name: str, sentence: str, strategy: str, num_beams, length_penalty, temperature, top_k,
                  top_p, max_new_tokens) -> tuple[str, list[Hypothesis]]:  # fmt: skip
        """A message (empty, or a note on truncation) and the hypotheses; ExplorerError for bad input."""
        sentence = check_sentence(sentence)
        settings = decoding_settings(strategy, num_beams, length_penalty, temperature, top_k, top_p, max_new_tokens)
        model, tokenizer, _ = self.get(name)
        length = len(tokenizer(sentence, verbose=False)["input_ids"])
        message = ""
        if length > tokenizer.model_max_length:
            message = f"The sentence has {length} tokens; only its first {tokenizer.model_max_length} are translated."
        return message, generate_hypotheses(model, tokenizer, sentence, **settings)

    def views(self, name: str, sentence: str, hypothesis: Hypothesis, merge: bool, layer: int, head: int) -> dict:
        """`render` of `hypothesis`, the translation of `sentence` by checkpoint `name`."""
        model, tokenizer, _ = self.get(name)
        explanation = explain(model, tokenizer, check_sentence(sentence), hypothesis.token_ids)
        special = set(tokenizer.all_special_tokens)
        return render(explanation, special, merge, int(layer), int(head), layer_names(model.config))


VIEW_KINDS = ("cross", "encoder_self", "decoder_self")
VIEW_LABELS = ("Cross attention", "Encoder self-attention", "Decoder self-attention")


def failure(error: Exception) -> str:
    """The line the page shows for `error`: its message for bad input, the exception's type only (and a logged
    traceback) for anything else, so that no visitor sees a stack trace or the server's paths."""
    if isinstance(error, ExplorerError):
        return str(error)
    logger.exception("the explorer failed", exc_info=error)
    return f"Something went wrong ({type(error).__name__}); the server's log has the details."


def _number(value, default: int = -1) -> int:
    # An emptied number box arrives as None; anything but a finite number picks the default view.
    number = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    return int(value) if number else default


def build_app(explorer: Explorer) -> gr.Blocks:
    """The explorer page for the checkpoints `explorer` serves, offered in a list (the first one shown first).

    `?sentence=...` in the page's address translates that sentence when the page opens (links to one example).
    """
    names = explorer.names
    with gr.Blocks(title="hf-attention explorer") as app:
        gr.Markdown("# Attention explorer\nTranslate a sentence and see where every attention head looks.")
        # A list, not a text box: Gradio refuses a value outside `choices`, and `Explorer.get` does again.
        model_box = gr.Dropdown(choices=names, value=names[0], label="model", interactive=len(names) > 1,
                                elem_id="model")  # fmt: skip
        # No LaTeX: a "$" in a model card is text.
        description = gr.Markdown(explorer.describe(names[0]), elem_id="model-description", latex_delimiters=[])
        sentence = gr.Textbox(label="German sentence", lines=2, value=EXAMPLES[0], elem_id="sentence")
        gr.Examples([[example] for example in EXAMPLES], inputs=[sentence])
        with gr.Row():
            strategy = gr.Radio(list(DECODING_STRATEGIES), value="beam search", label="decoding")
            num_beams = gr.Slider(*SETTING_RANGES["num_beams"], value=5, step=1, label="beam size")
            length_penalty = gr.Slider(*SETTING_RANGES["length_penalty"], value=1.0, step=0.1,
                                       label="length penalty (beam search)")  # fmt: skip
        with gr.Row():
            temperature = gr.Slider(
                *SETTING_RANGES["temperature"], value=1.0, step=0.1, label="temperature (sampling)"
            )
            top_k = gr.Slider(*SETTING_RANGES["top_k"], value=50, step=1, label="top-k (sampling; 0: all)")
            top_p = gr.Slider(*SETTING_RANGES["top_p"], value=1.0, step=0.05, label="top-p (sampling)")
            max_new_tokens = gr.Slider(*SETTING_RANGES["max_new_tokens"], value=64, step=1, label="max new tokens")
        translate_button = gr.Button("Translate", variant="primary", elem_id="translate")
        message = gr.Markdown(elem_id="message")
        translation = gr.Textbox(label="translation", interactive=False, elem_id="translation")
        nbest = gr.Dataframe(headers=["rank", "translation", "score"], label="n-best list (beam search scores)",
                             interactive=False)  # fmt: skip
        with gr.Row():
            choice = gr.Number(value=0, precision=0, minimum=0, label="hypothesis shown (rank)")
            merge = gr.Checkbox(value=False, label="merge subwords into words")
            layer = gr.Number(value=-1, precision=0, label="line view layer (-1: top)")
            head = gr.Number(value=-1, precision=0, label="line view head (-1: heads averaged)")
        outputs = {}
        with gr.Tabs():
            for kind, label in zip(VIEW_KINDS, VIEW_LABELS, strict=True):
                with gr.Tab(label):
                    outputs[kind] = (
                        gr.Markdown(),
                        gr.Plot(elem_id=f"{kind}-heatmap"),
                        gr.Plot(elem_id=f"{kind}-lines"),
                    )
            with gr.Tab("Token probabilities"):
                gr.Markdown("p(y_i | y_<i, x) of each output token, from a teacher-forced pass over the hypothesis.")
                probabilities = gr.Dataframe(headers=["position", "token", "probability"], interactive=False)
        hypotheses = gr.State([])
        view_outputs = [component for kind in VIEW_KINDS for component in outputs[kind]] + [probabilities]

        def show(name, text, shown, merge_words, line_layer, line_head, current):
            """The views of hypothesis `shown` of `current`; a message (and empty views) when there is none."""
            if not current:
                return ["", None, None] * len(VIEW_KINDS) + [None]
            rank = min(max(int(shown or 0), 0), len(current) - 1)
            try:
                views = explorer.views(name, text, current[rank], merge_words, _number(line_layer), _number(line_head))
            except Exception as error:  # noqa: BLE001  (the page shows a line; the log keeps the traceback)
                return [escape_markdown(failure(error)), None, None] * len(VIEW_KINDS) + [None]
            return [item for kind in VIEW_KINDS for item in views[kind]] + [views["probabilities"]]

        def run(name, text, *settings_and_view):
            """Translate, then show the chosen hypothesis; bad input gives a message and empty outputs."""
            settings, (shown, merge_words, line_layer, line_head) = settings_and_view[:7], settings_and_view[7:]
            try:
                note, current = explorer.translate(name, text, *settings)
            except Exception as error:  # noqa: BLE001  (the page shows a line; the log keeps the traceback)
                # A toast renders HTML and the message Markdown: neither should read a visitor's input as markup.
                gr.Warning(html.escape(failure(error)))
                return [f"**{escape_markdown(failure(error))}**", "", [], []] + show(name, text, 0, False, -1, -1, [])
            views = show(name, text, shown, merge_words, line_layer, line_head, current)
            return [note, current[0].text, hypothesis_rows(current), current] + views

        # Every input is named: Gradio hands the gr.Request to an annotated parameter, not through *args.
        def open_page(name, text, strategy, beams, penalty, temperature, top_k, top_p, new_tokens, shown,
                      merge_words, line_layer, line_head, request: gr.Request):  # fmt: skip
            """Translate the address's `?sentence=` on opening, else leave the page as it is."""
            asked = request.query_params.get("sentence") if request is not None else None
            if not asked:
                # Nothing changes: a sentence typed while the page was loading stays.
                return [gr.skip() for _ in range(1 + len(run_outputs))]
            settings = (strategy, beams, penalty, temperature, top_k, top_p, new_tokens)
            return [asked] + run(name, asked, *settings, shown, merge_words, line_layer, line_head)

        settings = [strategy, num_beams, length_penalty, temperature, top_k, top_p, max_new_tokens]
        view_inputs = [choice, merge, layer, head]
        run_outputs = [message, translation, nbest, hypotheses] + view_outputs
        translate_button.click(run, [model_box, sentence, *settings, *view_inputs], run_outputs, api_name="translate")
        # The other events are the page's own (api_visibility="private"); each still goes through `Explorer.get`.
        sentence.submit(run, [model_box, sentence, *settings, *view_inputs], run_outputs, api_visibility="private")
        for control in view_inputs:
            control.change(show, [model_box, sentence, *view_inputs, hypotheses], view_outputs,
                           api_visibility="private")  # fmt: skip
        model_box.change(explorer.describe, [model_box], [description], api_visibility="private")
        app.load(open_page, [model_box, sentence, *settings, *view_inputs], [sentence, *run_outputs],
                 api_visibility="private")  # fmt: skip
    return app


__all__ = [
    "EXAMPLES",
    "SETTING_RANGES",
    "Explanation",
    "Explorer",
    "ExplorerError",
    "Hypothesis",
    "build_app",
    "decoding_settings",
    "describe_model",
    "escape_markdown",
    "explain",
    "generate_hypotheses",
    "heatmap_figure",
    "layer_names",
    "lines_figure",
    "load_model",
    "merge_to_words",
    "render",
    "word_groups",
]
