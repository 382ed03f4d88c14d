import pytest
import torch

from hf_attention.plotting import plot_attention


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
