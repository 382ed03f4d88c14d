"""The attention explorer (hf_attention/explorer.py, app.py): its views against the package's own `translate` and
`align` on tiny untrained checkpoints, the page answering through gradio_client, and a headless Chromium loading
the page and drawing the heatmap. Needs the app extra; the browser test needs Debian's chromium and playwright."""

import ast
import importlib.util
import json
import math
import os
import shutil
import socket
import urllib.parse
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
    WEAKEST_LINE,
    Explorer,
    ExplorerError,
    build_app,
    card_scores,
    decoding_settings,
    explain,
    generate_hypotheses,
    heatmap_figure,
    lines_figure,
    merge_to_words,
    word_groups,
)
from hf_attention.tokenization import train_tokenizer  # noqa: E402
from hf_attention.translation import align, translate  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "Ich gehe nach Hause."
TEXTS = [SENTENCE, "Wie geht es dir?", "Das ist gut.", "I am going home.", "How are you?", "That is good."]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def save_checkpoint(path, tokenizer, **config) -> Path:
    torch.manual_seed(0)
    config = Seq2SeqAttentionConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2,
                                    num_attention_heads=2, dropout=0.0, **config)  # fmt: skip
    model = Seq2SeqAttentionForConditionalGeneration(config)
    model.generation_config.max_new_tokens = 8
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny checkpoints: "mixed" has self-attention in both stacks (encoder layer 0, decoder layer 1), "none" has no
    attention at all."""
    tokenizer = train_tokenizer(TEXTS * 10, vocab_size=60, model_max_length=32)
    root = tmp_path_factory.mktemp("explorer")
    mixed = save_checkpoint(root / "mixed", tokenizer, attention_type="bahdanau",
                            encoder_layer_types=["self_attention", "rnn"],
                            decoder_layer_types=["rnn", "self_attention"])  # fmt: skip
    return {"mixed": str(mixed), "none": str(save_checkpoint(root / "none", tokenizer, attention_type="none"))}


@pytest.fixture(scope="module")
def explorer(checkpoints):
    return Explorer()


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
    for line in ("cross attention: `bahdanau`, 2 heads", "self-attention: `bahdanau`, 2 heads",
                 "encoder layers: self_attention, LSTM", "decoder layers: LSTM, self_attention"):  # fmt: skip
        assert f"- {line}\n" in description
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
    with pytest.raises(ExplorerError, match="No such checkpoint folder"):
        explorer.translate(str(Path(name).parent / "missing"), SENTENCE, *settings)
    with pytest.raises(ExplorerError, match="not a checkpoint"):
        explorer.get(str(Path(name).parent))
    with pytest.raises(ExplorerError, match="temperature"):
        decoding_settings("sampling", temperature=0)
    with pytest.raises(ExplorerError, match="serves .* only"):
        Explorer(only=[name]).get(checkpoints["none"])


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


def test_the_script_ends_with_one_line_for_a_missing_checkpoint(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("explore_script", REPO_ROOT / "scripts" / "explore.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--model", str(tmp_path / "missing"), "--device", "cpu"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip() == f"explore.py: error: No such checkpoint folder: {tmp_path / 'missing'}"


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
    app = build_app(checkpoints["mixed"], explorer=explorer)
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
    ("sentence", "checkpoint", "message"),
    [
        ("", "mixed", "Type a sentence"),
        (("Wort " * 1000)[:-1] + ".", "mixed", "5,000 characters"),
        (SENTENCE, "missing", "No such checkpoint folder"),
    ],
)
def test_bad_input_gives_a_message_on_the_page(served, checkpoints, sentence, checkpoint, message):
    name = checkpoints.get(checkpoint, str(Path(checkpoints["mixed"]).parent / checkpoint))
    shown, translation, *_ = ask(served, name, sentence)
    assert message in shown and "Traceback" not in shown
    assert translation == ""


def test_app_py_serves_its_checkpoint_only(checkpoints, monkeypatch):
    monkeypatch.setenv("EXPLORER_MODEL", checkpoints["none"])
    spec = importlib.util.spec_from_file_location("explorer_space_app", REPO_ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.demo, gr.Blocks)
    assert module.ONLY == [checkpoints["none"]]


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
