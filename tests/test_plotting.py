import pytest
import torch

from hf_attention import plotting
from hf_attention.length_buckets import markdown_table
from hf_attention.plotting import plot_attention, plot_by_length, plot_learning_curves


def test_heatmap_has_one_panel_per_head_plus_average(tmp_path):
    from PIL import Image

    weights = torch.softmax(torch.randn(2, 3, 4), dim=-1)
    one_head = plot_attention(weights[0], list("abcd"), list("xyz"), tmp_path / "one.png")
    two_heads = plot_attention(weights, list("abcd"), list("xyz"), tmp_path / "two.png", title="t")
    width_one = Image.open(one_head).size[0]
    width_two = Image.open(two_heads).size[0]
    # Two heads give three panels (head 0, head 1, average): three times as wide as one panel.
    assert width_two == pytest.approx(3 * width_one, rel=0.02)


def test_label_counts_must_match_the_weights(tmp_path):
    with pytest.raises(ValueError, match=r"3 source and 3 target labels for weights of shape \(3, 4\)"):
        plot_attention(torch.zeros(3, 4), list("abc"), list("xyz"), tmp_path / "x.png")


def test_length_plot_and_table(tmp_path):
    from PIL import Image

    rows = [{"bucket": "1-5", "count": 10, "bleu": 20.0}, {"bucket": "6+", "count": 4, "bleu": None}]
    path = plot_by_length({"none": rows, "bahdanau": rows}, "bleu", tmp_path / "plot.png", title="t")
    assert Image.open(path).size == (600, 400)
    assert markdown_table({"none": rows}, "bleu").splitlines() == [
        "| | 1-5 (n=10) | 6+ (n=4) |",
        "|---|---|---|",
        "| `none` | 20.00 | - |",
    ]
    with pytest.raises(ValueError, match="different buckets"):
        plot_by_length({"a": rows, "b": rows[:1]}, "bleu", tmp_path / "bad.png")


def drawn_lines(monkeypatch) -> list:
    """Patch `save_figure` to record, per axis, the (x, y) data of every line instead of only writing the image."""
    drawn, save = [], plotting.save_figure

    def record(figure, path, dpi):
        for axis in figure.axes:
            drawn.append([(list(line.get_xdata()), list(line.get_ydata())) for line in axis.lines])
        return save(figure, path, dpi)

    monkeypatch.setattr(plotting, "save_figure", record)
    return drawn


TRAINER_LOG = [
    {"loss": 5.0, "learning_rate": 0.003, "step": 100, "train_minutes": 0.5},
    {"loss": 4.0, "learning_rate": 0.002, "step": 200, "train_minutes": 1.0},
    {"eval_loss": 4.5, "eval_bleu": 3.0, "eval_chrf": 20.0, "step": 200, "train_minutes": 1.2},
    {"loss": 3.5, "learning_rate": 0.001, "step": 300, "train_minutes": 1.7},
    {"eval_loss": 4.6, "eval_bleu": 4.0, "eval_chrf": 21.0, "step": 300, "train_minutes": 1.9},
    {"train_loss": 4.2, "train_runtime": 120.0, "step": 300, "train_minutes": 2.0},
]


def test_learning_curves_plot_losses_and_bleu_against_minutes(tmp_path, monkeypatch):
    drawn = drawn_lines(monkeypatch)
    path = plot_learning_curves(TRAINER_LOG, tmp_path / "curves.png", title="t")
    assert path.is_file()
    (training, validation), (bleu,) = drawn
    assert training == ([0.5, 1.0, 1.7], [5.0, 4.0, 3.5])
    assert validation == ([1.2, 1.9], [4.5, 4.6])
    assert bleu == ([1.2, 1.9], [3.0, 4.0])


def test_learning_curves_use_steps_without_minutes(tmp_path, monkeypatch):
    drawn = drawn_lines(monkeypatch)
    # The Accelerate loop's log_history.jsonl: no time budget, no validation loss.
    records = [{"step": 10, "loss": 5.0}, {"step": 20, "loss": 4.0}, {"step": 20, "eval_bleu": 2.5}]
    plot_learning_curves(records, tmp_path / "curves.png")
    (training,), (bleu,) = drawn
    assert training == ([10, 20], [5.0, 4.0]) and bleu == ([20], [2.5])
    with pytest.raises(ValueError, match="no record has loss, eval_loss or eval_bleu"):
        plot_learning_curves([{"step": 1, "learning_rate": 0.1}], tmp_path / "none.png")
