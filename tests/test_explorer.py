"""The attention explorer (hf_attention/explorer.py, app.py): its views against the package's own `translate` and
`align` on tiny untrained checkpoints, the page answering through gradio_client, and a headless Chromium loading
the page and drawing the heatmap. Needs the app extra; the browser test needs Debian's chromium and playwright."""

import ast
import html
import importlib.util
import json
import math
import os
import re
import shutil
import socket
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls from the page
gr = pytest.importorskip("gradio", reason="the explorer needs the app extra: pip install 'hf-attention[app]'")

from hf_attention import Seq2SeqAttentionConfig, Seq2SeqAttentionForConditionalGeneration  # noqa: E402
from hf_attention.explorer import (  # noqa: E402
    EXAMPLES,
    NO_ALIGNMENT,
    NO_DECODER,
    SETTING_RANGES,
    WEAKEST_LINE,
    Explorer,
    ExplorerError,
    build_app,
    card_scores,
    decoding_settings,
    describe_model,
    escape_markdown,
    explain,
    generate_hypotheses,
    heatmap_figure,
    lines_figure,
    load_model,
    merge_to_words,
    word_groups,
)
from hf_attention.tokenization import train_tokenizer  # noqa: E402
from hf_attention.translation import align, translate  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "Ich gehe nach Hause."
TEXTS = [SENTENCE, "Wie geht es dir?", "Das ist gut.", "I am going home.", "How are you?", "That is good."]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# A model card is the checkpoint author's text, not the page's markup: these must show as typed.
HOSTILE_METRIC = "<img src=x onerror=alert(1)>"
HOSTILE_DATASET = "</script><script>alert(2)</script> [click](http://evil.example) *bold* $$x$$ & _x_"


def save_checkpoint(path, tokenizer, **config) -> Path:
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2,
                                    num_attention_heads=2, dropout=0.0, **config)  # fmt: skip
    model = Seq2SeqAttentionForConditionalGeneration(config)
    model.generation_config.max_new_tokens = 8
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_card(folder, metric_name: str, dataset_name: str) -> None:
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    result = EvalResult(task_type="translation", dataset_type="ding", dataset_name=dataset_name, metric_type="bleu",
                        metric_name=metric_name, metric_value=23.45)  # fmt: skip
    ModelCard.from_template(ModelCardData(eval_results=[result], model_name="m")).save(Path(folder) / "README.md")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny checkpoints: "mixed" has self-attention in both stacks (encoder layer 0, decoder layer 1) and a model card
    whose metric and dataset names are markup; "none" has no attention at all; "unlisted" is a checkpoint that no
    explorer of these tests serves."""
    tokenizer = train_tokenizer(TEXTS * 10, vocab_size=60, model_max_length=32)
    root = tmp_path_factory.mktemp("explorer")
    mixed = save_checkpoint(root / "mixed", tokenizer, attention_type="bahdanau",
                            encoder_layer_types=["self_attention", "rnn"],
                            decoder_layer_types=["rnn", "self_attention"])  # fmt: skip
    save_card(mixed, HOSTILE_METRIC, HOSTILE_DATASET)
    none = save_checkpoint(root / "none", tokenizer, attention_type="none")
    unlisted = save_checkpoint(root / "unlisted", tokenizer, attention_type="bahdanau")
    return {"mixed": str(mixed), "none": str(none), "unlisted": str(unlisted)}


def rendered_html(markdown: str) -> str:
    """`markdown` as CommonMark renders it, raw HTML allowed (as Gradio's Markdown allows it)."""
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (a Gradio dependency) renders Markdown")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).render(markdown)


def rendered_text(markdown: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", rendered_html(markdown)))


@pytest.fixture(scope="module")
def explorer(checkpoints):
    return Explorer([checkpoints["mixed"], checkpoints["none"]])


def test_the_example_sentences_are_not_in_the_default_corpus():
    corpus = Path("/usr/share/trans/de-en")
    if not corpus.is_file():
        pytest.skip("Debian's trans-de-en (the default corpus) is not installed")
    text = corpus.read_text(encoding="utf-8", errors="replace")
    assert len(EXAMPLES) >= 3
    assert [example for example in EXAMPLES if example in text] == []


def test_hypotheses_are_the_translations_of_translate_and_the_scores_those_of_beam_search(explorer, checkpoints):
    model, tokenizer, _ = explorer.get(checkpoints["mixed"])
    (greedy,) = generate_hypotheses(model, tokenizer, SENTENCE, **decoding_settings("greedy", max_new_tokens=12))
    assert greedy.text == translate(model, tokenizer, [SENTENCE], num_beams=1, max_new_tokens=12)[0]
    assert greedy.score is None
    settings = decoding_settings("beam search", num_beams=3, length_penalty=0.5, max_new_tokens=12)
    nbest = generate_hypotheses(model, tokenizer, SENTENCE, **settings)
    assert len(nbest) == 3
    best = {key: value for key, value in settings.items() if key != "num_return_sequences"}
    assert nbest[0].text == translate(model, tokenizer, [SENTENCE], **best)[0]
    assert [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)
    for hypothesis in nbest:
        # A beam's score is its tokens' summed log-probability over length ** length_penalty, and the page's
        # per-token probabilities come from the same model: the two must agree.
        probabilities = explain(model, tokenizer, SENTENCE, hypothesis.token_ids).token_probabilities
        expected = probabilities.log().sum().item() / len(hypothesis.token_ids) ** 0.5
        assert math.isclose(hypothesis.score, expected, rel_tol=1e-4, abs_tol=1e-4)


def test_the_views_show_the_weights_that_align_and_the_model_return(explorer, checkpoints):
    name = checkpoints["mixed"]
    model, tokenizer, description = explorer.get(name)
    text = rendered_text(description)
    for line in ("cross attention: bahdanau, 2 heads", "self-attention: bahdanau, 2 heads",
                 "encoder layers: self_attention, LSTM", "decoder layers: LSTM, self_attention"):  # fmt: skip
        assert f"\n{line}\n" in text
    (hypothesis,) = explorer.translate(name, SENTENCE, "greedy", 1, 1.0, 1.0, 50, 1.0, 8)[1]
    explanation = explain(model, tokenizer, SENTENCE, hypothesis.token_ids)
    expected = align(model, tokenizer, SENTENCE, num_beams=1, max_new_tokens=8)
    shown = explanation.alignment
    assert (shown.source_tokens, shown.target_tokens) == (expected.source_tokens, expected.target_tokens)
    assert shown.translation == expected.translation == hypothesis.text
    torch.testing.assert_close(shown.weights, expected.weights)
    torch.testing.assert_close(shown.encoder_self_attention, expected.encoder_self_attention)
    torch.testing.assert_close(shown.decoder_self_attention, expected.decoder_self_attention)
    # The decoder's self-attention straight from the model's outputs too.
    inputs = tokenizer([SENTENCE], return_tensors="pt")
    labels = torch.tensor([hypothesis.token_ids])
    outputs = model(**inputs, labels=labels, output_attentions=True)
    torch.testing.assert_close(shown.decoder_self_attention, torch.stack([a[0] for a in outputs.decoder_attentions]))
    expected_probabilities = outputs.logits[0].softmax(-1).gather(-1, labels[0, :, None])[:, 0]
    torch.testing.assert_close(explanation.token_probabilities, expected_probabilities)

    views = explorer.views(name, SENTENCE, hypothesis, merge=False, layer=-1, head=-1)
    attentions = {"cross": shown.weights, "encoder_self": shown.encoder_self_attention,
                  "decoder_self": shown.decoder_self_attention}  # fmt: skip
    titles = {"cross": "decoder layer 1", "encoder_self": "encoder layer 0", "decoder_self": "decoder layer 1"}
    for kind, weights in attentions.items():
        note, heatmap, lines = views[kind]
        layers, heads, queries, keys = weights.shape
        # One heatmap a layer and head, then the heads' average, in that order: each shows exactly those weights.
        panels = torch.cat([weights, weights.mean(1, keepdim=True)], dim=1).flatten(0, 1)
        assert len(heatmap.data) == layers * (heads + 1)
        for trace, panel in zip(heatmap.data, panels, strict=True):
            torch.testing.assert_close(torch.tensor(trace.z, dtype=torch.float32), panel)
        assert heatmap.layout.annotations[-1].text == f"{titles[kind]}, heads averaged"
        # The line view: the top layer's head average, one line per weight above WEAKEST_LINE, width 1 + 5 weight.
        top = weights[-1].mean(0)
        line_traces = [trace for trace in lines.data if trace.mode == "lines"]
        assert len(line_traces) == int((top >= WEAKEST_LINE).sum())
        widths = sorted(trace.line.width for trace in line_traces)
        torch.testing.assert_close(torch.tensor(widths), (1 + 5 * top[top >= WEAKEST_LINE]).sort().values)
        assert titles[kind] in lines.layout.title.text
    assert views["decoder_self"][0] != NO_DECODER
    assert views["probabilities"] == [
        [position, token, round(probability, 4)]
        for position, (token, probability) in enumerate(
            zip(shown.target_tokens, expected_probabilities.tolist(), strict=True)
        )
    ]


def test_merging_subwords_into_words_by_hand():
    tokens = ["▁Der", "▁Zu", "g", "</s>"]
    assert word_groups(tokens, {"</s>"}) == [("Der", [0]), ("Zug", [1, 2]), ("</s>", [3])]
    outputs = ["▁The", "▁tra", "in", "</s>"]
    weights = torch.tensor(
        [[0.7, 0.1, 0.1, 0.1], [0.1, 0.5, 0.3, 0.1], [0.2, 0.2, 0.4, 0.2], [0.0, 0.0, 0.2, 0.8]]
    )  # [output subword, source subword]
    merged, queries, keys = merge_to_words(weights[None, None], outputs, tokens, {"</s>"})
    assert (queries, keys) == (["The", "train", "</s>"], ["Der", "Zug", "</s>"])
    # "train" averages its two pieces' rows; "Zug" sums its two pieces' columns.
    by_hand = torch.tensor(
        [
            [0.7, 0.1 + 0.1, 0.1],
            [(0.1 + 0.2) / 2, (0.5 + 0.3 + 0.2 + 0.4) / 2, (0.1 + 0.2) / 2],
            [0.0, 0.0 + 0.2, 0.8],
        ]
    )
    torch.testing.assert_close(merged[0, 0], by_hand)


def test_a_model_without_attention_says_it_has_no_alignment(explorer, checkpoints):
    name = checkpoints["none"]
    assert "no alignment" in explorer.describe(name)
    _, nbest = explorer.translate(name, SENTENCE, "beam search", 2, 1.0, 1.0, 50, 1.0, 8)
    views = explorer.views(name, SENTENCE, nbest[1], merge=True, layer=-1, head=-1)
    assert views["cross"] == (NO_ALIGNMENT, None, None)
    assert views["encoder_self"][1] is None and views["decoder_self"][1] is None
    assert len(views["probabilities"]) == len(nbest[1].token_ids)


def test_bad_input_is_refused_with_a_message(explorer, checkpoints):
    name = checkpoints["mixed"]
    settings = ("beam search", 3, 1.0, 1.0, 50, 1.0, 8)
    with pytest.raises(ExplorerError, match="Type a sentence"):
        explorer.translate(name, "   ", *settings)
    with pytest.raises(ExplorerError, match="5,000 characters"):
        explorer.translate(name, "x" * 5000, *settings)
    with pytest.raises(ExplorerError, match="must be text"):
        explorer.translate(name, ["a", "list"], *settings)
    with pytest.raises(ExplorerError, match="temperature"):
        decoding_settings("sampling", temperature=0)
    with pytest.raises(ExplorerError, match="Unknown decoding strategy None"):
        explorer.translate(name, SENTENCE, None, *settings[1:])


def test_the_explorer_loads_its_checkpoints_through_load_checkpoint(checkpoints, tmp_path):
    # load_checkpoint's checks hold: a checkpoint whose tokenizer file is gone is refused at start, in one line.
    broken = tmp_path / "broken"
    shutil.copytree(checkpoints["none"], broken)
    (broken / "tokenizer.json").unlink()
    for name, reason in ((str(broken), "no tokenizer.json"), (str(tmp_path / "missing"), "no such checkpoint folder")):
        with pytest.raises(ExplorerError) as refusal:
            Explorer([checkpoints["mixed"], name])
        assert reason in str(refusal.value) and "\n" not in str(refusal.value)
    with pytest.raises(ExplorerError, match="at least one checkpoint"):
        Explorer(["", "  "])
    assert Explorer(checkpoints["none"]).names == Explorer([checkpoints["none"], checkpoints["none"] + " "]).names
    checkpoint = load_model(checkpoints["none"])
    assert not checkpoint.model.training and checkpoint.tokenizer.eos_token_id == checkpoint.config.eos_token_id


def other_names(checkpoints, tmp_path) -> list:
    """Names a visitor might send that the explorer does not serve: a real checkpoint folder, paths that exist or
    not, traversal, a name too long for the file system, a Hub id, and values that are not names at all."""
    unlisted = save_checkpoint(tmp_path / "real", train_tokenizer(TEXTS * 10, vocab_size=60, model_max_length=32))
    return [str(unlisted), checkpoints["unlisted"], "/nope", "/root/.cache", "/tmp", "../../../../etc",
            checkpoints["mixed"] + "/../unlisted", checkpoints["mixed"] + " ", "a" * 100_000, "someone/model",
            "[x](http://e)", "", None, ["x"], 3]  # fmt: skip


def test_the_explorer_refuses_every_other_name_with_one_message(explorer, checkpoints, tmp_path, monkeypatch):
    names = other_names(checkpoints, tmp_path)
    messages = set()
    with monkeypatch.context() as patch:
        # A refusal may not look anything up: no file system call, no loading.
        for call in ("stat", "lstat", "listdir", "scandir", "access"):
            patch.setattr(os, call, lambda *args, **kwargs: pytest.fail("the file system was asked about a name"))
        patch.setattr("hf_attention.explorer.load_checkpoint", lambda *a, **k: pytest.fail("a checkpoint loaded"))
        for name in names:
            with pytest.raises(ExplorerError) as refusal:
                explorer.get(name)
            messages.add(str(refusal.value))
            with pytest.raises(ExplorerError) as refusal:
                explorer.translate(name, SENTENCE, "greedy", 1, 1.0, 1.0, 50, 1.0, 8)
            messages.add(str(refusal.value))
            assert explorer.describe(name) == f"**{escape_markdown(explorer.refusal)}**"
    assert messages == {explorer.refusal}
    assert explorer.names == [checkpoints["mixed"], checkpoints["none"]]


def event_function(app: gr.Blocks, name: str):
    return next(block.fn for block in app.fns.values() if block.name == name)


def test_the_page_events_refuse_an_unlisted_checkpoint(explorer, checkpoints, tmp_path):
    """What a caller of /translate (or of the page's own events, by their index) gets for a name outside the list:
    the same message for a real checkpoint folder as for a path that does not exist."""
    app = build_app(explorer)
    run, show = event_function(app, "run"), event_function(app, "show")
    settings = ("greedy", 1, 1.0, 1.0, 50, 1.0, 8, 0, False, -1, -1)
    current = explorer.translate(checkpoints["mixed"], SENTENCE, *settings[:7])[1]
    shown = {}
    for name in other_names(checkpoints, tmp_path):
        message, translation, *_ = run(name, SENTENCE, *settings)
        assert translation == ""
        views = show(name, SENTENCE, 0, False, -1, -1, current)
        shown[message, views[0]] = name
    refusal = escape_markdown(explorer.refusal)
    assert list(shown) == [(f"**{refusal}**", refusal)]


def test_the_reported_scores_come_from_the_model_card_else_from_test_results(tmp_path):
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    assert card_scores(str(tmp_path)) == []
    (tmp_path / "test_results.json").write_text(json.dumps({"test_bleu": 21.456, "test_chrf": 50.0}))
    assert card_scores(str(tmp_path)) == [
        "BLEU 21.46 (test split, test_results.json)",
        "chrF 50.00 (test split, test_results.json)",
    ]
    result = EvalResult(task_type="translation", dataset_type="ding", dataset_name="ding (de-en), test split",
                        metric_type="bleu", metric_name="BLEU", metric_value=23.45)  # fmt: skip
    card = ModelCard.from_template(ModelCardData(eval_results=[result], model_name="m"))
    card.save(tmp_path / "README.md")
    assert card_scores(str(tmp_path)) == ["BLEU 23.45 (ding (de-en), test split)"]


@pytest.mark.parametrize(
    ("value", "strategy", "setting"),
    [
        (0, "beam search", "num_beams"),
        (1000, "beam search", "num_beams"),
        (float("nan"), "beam search", "num_beams"),
        (None, "beam search", "num_beams"),
        ("abc", "beam search", "num_beams"),
        (2.5, "beam search", "num_beams"),
        (10**6, "greedy", "max_new_tokens"),
        (float("nan"), "greedy", "max_new_tokens"),
        (float("inf"), "greedy", "max_new_tokens"),
        (-5, "sampling", "top_k"),
        (float("nan"), "sampling", "top_k"),
        (float("nan"), "sampling", "temperature"),
        (float("inf"), "sampling", "temperature"),
        (float("nan"), "sampling", "top_p"),
        (1.5, "sampling", "top_p"),
        (float("nan"), "beam search", "length_penalty"),
        (True, "beam search", "num_beams"),
    ],
)
def test_decoding_settings_outside_the_sliders_are_refused_by_name(value, strategy, setting):
    """The server holds a caller of the API to the sliders' ranges: Gradio's own check lets NaN through."""
    low, high = SETTING_RANGES[setting]
    with pytest.raises(
        ExplorerError, match=rf"^{setting}={re.escape(repr(value))}: expected .* from {low} to {high}$"
    ):
        decoding_settings(strategy, **{setting: value})


def test_decoding_settings_within_the_sliders_pass():
    settings = decoding_settings("sampling", num_beams=10.0, top_k=0, top_p=0.1, temperature=2.0, max_new_tokens=128)
    assert settings == {"max_new_tokens": 128, "num_beams": 1, "do_sample": True, "temperature": 2.0, "top_k": 0,
                        "top_p": 0.1}  # fmt: skip
    assert isinstance(settings["max_new_tokens"], int) and isinstance(settings["top_k"], int)


def test_checkpoint_strings_are_literal_text_in_the_description(explorer, checkpoints):
    name = "[a link](http://evil.example) <b>bold</b> `code` $$x$$"
    descriptions = {
        name: describe_model(load_model(checkpoints["mixed"]), name),
        checkpoints["mixed"]: explorer.describe(checkpoints["mixed"]),
    }
    for shown_name, description in descriptions.items():
        assert HOSTILE_METRIC not in description and "<script>" not in description
        assert "&lt;img src\\=x onerror\\=alert\\(1\\)&gt;" in description
        # As CommonMark with raw HTML allowed: no tag or link comes from the card, and its text reads as typed.
        assert re.findall(r"<(?!/?(?:p|strong|code|ul|li)>)[^>]*>", rendered_html(description)) == []
        text = rendered_text(description)
        assert f"{HOSTILE_METRIC} 23.45 ({HOSTILE_DATASET})" in text
        assert f"Model {shown_name}\n" in text


def test_escape_markdown_turns_markup_into_text():
    assert (
        escape_markdown("<b>a_b</b>\n# [x](y) & 'q'")
        == "&lt;b&gt;a\\_b&lt;/b&gt; \\# \\[x\\]\\(y\\) &amp; &#x27;q&#x27;"
    )


def load_script():
    spec = importlib.util.spec_from_file_location("explore_script", REPO_ROOT / "scripts" / "explore.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_the_script_ends_with_one_line_for_a_missing_checkpoint(checkpoints, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script().main(["--model", checkpoints["none"], "--model", str(tmp_path / "missing"), "--device", "cpu"])
    assert exit_info.value.code == 1
    # The last line (loading the first checkpoint may draw a progress bar above it).
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"explore.py: error: {tmp_path / 'missing'}: no such checkpoint folder"


class FakePage:
    """Stands in for build_app's page: records the explorer it was built for and how it was launched."""

    def __init__(self, explorer):
        self.explorer, self.launched = explorer, None

    def launch(self, **kwargs):
        self.launched = kwargs


@pytest.mark.parametrize(
    ("where", "reachable"),
    [([], False), (["--server_name", "0.0.0.0"], True), (["--share"], True), (["--server_name", "localhost"], False)],
)
def test_the_script_serves_every_model_given_and_says_which(checkpoints, monkeypatch, capsys, where, reachable):
    pages = []
    monkeypatch.setattr(
        "hf_attention.explorer.build_app", lambda explorer: pages.append(FakePage(explorer)) or pages[-1]
    )
    mixed, none = checkpoints["mixed"], checkpoints["none"]
    load_script().main(["--model", mixed, "--model", none, "--device", "cpu", *where])
    (page,) = pages
    assert page.explorer.names == [mixed, none]
    assert page.launched["share"] == ("--share" in where)
    out = capsys.readouterr().out
    assert f"serving 2 model(s), the only ones a visitor can pick: {mixed}, {none}" in out
    assert ("reachable from other machines" in out) == reachable


def test_figures_escape_nothing_and_keep_repeated_tokens_apart():
    weights = torch.tensor([[[[0.5, 0.5], [0.9, 0.1]]]])  # [layers, heads, queries, keys]
    heatmap = heatmap_figure(weights, [".", "."], ["a", "a"], "t")
    assert len(heatmap.data) == 1  # one head: no average panel
    assert list(heatmap.layout.yaxis.ticktext) == [".", "."] and list(heatmap.layout.yaxis.tickvals) == [0, 1]
    lines = lines_figure(weights[0, 0], ["<s>", "b"], ["a", "c"], "t")
    assert "&lt;s&gt;" in "".join(trace.hovertemplate or "" for trace in lines.data)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(checkpoints, explorer):
    app = build_app(explorer)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def ask(url, name, sentence, strategy="beam search", beams=3):
    from gradio_client import Client

    client = Client(url, verbose=False)
    return client.predict(name, sentence, strategy, beams, 1.0, 1.0, 50, 1.0, 8, 0, False, -1, -1,
                          api_name="/translate")  # fmt: skip


def test_the_page_answers_through_gradio_client(served, checkpoints, explorer):
    model, tokenizer, _ = explorer.get(checkpoints["mixed"])
    # The hypotheses live in a gr.State, which the API leaves out of its answer.
    message, translation, nbest, *views, probabilities = ask(served, checkpoints["mixed"], SENTENCE)
    assert len(views) == 9  # a note, a heatmap and a line view for each kind of attention
    assert message == ""
    assert translation == translate(model, tokenizer, [SENTENCE], num_beams=3, max_new_tokens=8)[0]
    expected = generate_hypotheses(model, tokenizer, SENTENCE, **decoding_settings("beam search", 3, max_new_tokens=8))
    rows = nbest["data"] if isinstance(nbest, dict) else nbest
    assert [row[1] for row in rows] == [hypothesis.text for hypothesis in expected]
    assert [float(row[2]) for row in rows] == pytest.approx([hypothesis.score for hypothesis in expected], abs=1e-4)
    explanation = explain(model, tokenizer, SENTENCE, expected[0].token_ids)
    weights = {"cross": explanation.alignment.weights, "encoder_self": explanation.alignment.encoder_self_attention,
               "decoder_self": explanation.alignment.decoder_self_attention}  # fmt: skip
    for (kind, expected_weights), note, heatmap in zip(weights.items(), views[0::3], views[1::3], strict=True):
        assert kind.split("_")[0] in note
        figure = json.loads(heatmap["plot"])
        first_head = torch.tensor(figure["data"][0]["z"], dtype=torch.float32)
        torch.testing.assert_close(first_head, expected_weights[0, 0])
    rows = probabilities["data"] if isinstance(probabilities, dict) else probabilities
    assert [float(row[2]) for row in rows] == pytest.approx(explanation.token_probabilities.tolist(), abs=1e-4)


@pytest.mark.parametrize(
    ("sentence", "message"), [("", "Type a sentence"), (("Wort " * 1000)[:-1] + ".", "5,000 characters")]
)
def test_bad_input_gives_a_message_on_the_page(served, checkpoints, sentence, message):
    shown, translation, *_ = ask(served, checkpoints["mixed"], sentence)
    assert message in shown and "Traceback" not in shown
    assert translation == ""


def post_translate(url: str, data: list) -> tuple[str, object]:
    """Call /translate over plain HTTP, as any client can (with NaN as a JSON literal, which gradio_client refuses to
    send): the stream's last event and its data."""
    endpoint = f"{url}gradio_api/call/translate"
    request = urllib.request.Request(
        endpoint, json.dumps({"data": data}).encode(), {"Content-Type": "application/json"}
    )
    event_id = json.loads(urllib.request.urlopen(request, timeout=120).read())["event_id"]
    lines = urllib.request.urlopen(f"{endpoint}/{event_id}", timeout=120).read().decode().splitlines()
    event = [line.split(": ", 1)[1] for line in lines if line.startswith("event:")][-1]
    return event, json.loads([line.split(": ", 1)[1] for line in lines if line.startswith("data:")][-1])


def test_a_nan_setting_sent_over_http_gets_a_message(served, checkpoints):
    settings = ["sampling", 3, 1.0, float("nan"), 50, 1.0, 8, 0, False, -1, -1]
    event, (message, translation, *_) = post_translate(served, [checkpoints["mixed"], SENTENCE, *settings])
    assert event == "complete" and translation == ""
    assert message == f"**{escape_markdown('temperature=nan: expected a number from 0.1 to 2.0')}**"


def test_an_unlisted_checkpoint_sent_over_http_is_refused_alike(served, checkpoints, explorer, tmp_path):
    """Gradio's list refuses a name outside it before the explorer sees it; its message repeats the name given and
    nothing else, so a real checkpoint folder and a missing path get the same answer."""
    from gradio_client.exceptions import AppError

    answers = set()
    for name in (checkpoints["unlisted"], str(tmp_path / "missing"), "/root/.cache"):
        with pytest.raises(AppError) as refusal:
            ask(served, name, SENTENCE)
        answers.add(str(refusal.value).replace(name, "NAME"))
    assert len(answers) == 1 and "not in the list of choices" in answers.pop()
    assert explorer.names == [checkpoints["mixed"], checkpoints["none"]]


def test_app_py_serves_its_checkpoints_only(checkpoints, monkeypatch):
    monkeypatch.setenv("EXPLORER_MODEL", f"{checkpoints['none']}, {checkpoints['mixed']}")
    monkeypatch.setenv("EXPLORER_ANY_MODEL", "1")  # no such mode: the list holds whatever else is set
    spec = importlib.util.spec_from_file_location("explorer_space_app", REPO_ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.demo, gr.Blocks)
    assert module.explorer.names == [checkpoints["none"], checkpoints["mixed"]]
    with pytest.raises(ExplorerError, match="serves only"):
        module.explorer.get(checkpoints["unlisted"])


def test_the_space_requirements_are_the_package_and_its_app_extra():
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11 reads pyproject.toml")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lines = (REPO_ROOT / "space" / "requirements.txt").read_text().splitlines()
    requirements = {line.strip() for line in lines if line.strip() and not line.startswith(("#", "-"))}
    gradio_free = [name for name in project["optional-dependencies"]["app"] if not name.startswith("gradio")]
    assert requirements == set(project["dependencies"]) | set(gradio_free)


def test_the_core_package_does_not_import_gradio():
    """No module but the explorer imports Gradio, Plotly or the explorer: `import hf_attention` works without the
    app extra."""
    importers = []
    for module in sorted((REPO_ROOT / "hf_attention").glob("*.py")):
        if module.name == "explorer.py":
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module or ''}.{alias.name}" for alias in node.names]
            if any(name.split(".")[0] in ("gradio", "plotly") or name.endswith("explorer") for name in names):
                importers.append(module.name)
    assert importers == []


def test_a_browser_loads_the_page_and_draws_the_heatmap(served, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium binary: apt-get install chromium (scripts/setup.sh does where apt is usable)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing: pip install playwright")
    from PIL import Image

    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # Playwright's 30 s default is too short for the first translation on a loaded 2-core machine.
            page.set_default_timeout(120_000)
            page.goto(served)
            # The model card's markup shows as text: no image, script or link comes from it.
            described = "(document.querySelector('#model-description')?.innerText || '')"
            page.wait_for_function(f"{described}.includes({json.dumps(HOSTILE_METRIC)})")
            assert HOSTILE_DATASET in page.inner_text("#model-description")
            assert page.locator("#model-description img, #model-description a, #model-description script").count() == 0
            page.fill("#sentence textarea", "")
            page.click("#translate")
            page.wait_for_function("(document.querySelector('#message')?.innerText || '').includes('Type a sentence')")
            assert "Traceback" not in page.inner_text("body")
            page.fill("#sentence textarea", SENTENCE)
            page.click("#translate")
            heatmap = page.locator("#cross-heatmap .js-plotly-plot")
            heatmap.wait_for()
            page.wait_for_function("(document.querySelector('#translation textarea')?.value || '').length > 0")
            assert page.locator("#cross-heatmap .heatmaplayer image, #cross-heatmap .hm").count() > 0
            path = tmp_path / "page.png"
            heatmap.screenshot(path=str(path))
            # A link with ?sentence= translates that sentence as the page opens.
            page.goto(f"{served}?sentence={urllib.parse.quote(TEXTS[1])}")
            page.wait_for_function("(document.querySelector('#translation textarea')?.value || '').length > 0")
            assert page.input_value("#sentence textarea") == TEXTS[1]
        finally:
            browser.close()
    image = Image.open(path).convert("L")
    width, height = image.size
    assert width > 200 and height > 150
    # The cells are greys on a white page (an untrained model's near-uniform weights give light ones): a drawn
    # heatmap covers much of its box with them, an empty or collapsed figure leaves the box white.
    shaded = sum(image.histogram()[:245])
    assert shaded > 0.15 * width * height, f"{shaded} shaded pixels of {width * height}: the heatmap looks empty"
