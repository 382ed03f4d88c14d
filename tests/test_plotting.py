import pytest
import torch

from hf_attention.length_buckets import markdown_table
from hf_attention.plotting import plot_attention, plot_by_length


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
