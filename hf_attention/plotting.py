"""The package's figures, in the manner of Bahdanau et al. 2015: attention heatmaps (their Figure 3: source words on
the x axis, generated target words on the y axis, the weight a_ij as the brightness of cell (i, j)), scores
against source length (their Figure 2), and a run's learning curves."""

from pathlib import Path

import torch


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError("Plotting needs matplotlib: pip install 'hf-attention[plots]'") from error
    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def plot_attention(
    weights: torch.Tensor,
    source_tokens: list[str],
    target_tokens: list[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draw one sentence's attention and save it as an image: the keys (source tokens) on the x axis, the queries
    (target tokens for cross attention; the source tokens again for encoder self-attention) on the y axis.

    Args:
        weights: [tgt_len, src_len] for one map, or [heads, tgt_len, src_len] for one panel per head followed by a
            panel of the head average.
        source_tokens: `src_len` labels for the x axis.
        target_tokens: `tgt_len` labels for the y axis.
        path: where to write the image (the format follows the suffix, e.g. `.png`).
        title: a title over the figure.

    Returns:
        The path written.
    """
    given_shape = tuple(weights.shape)
    weights = weights.detach().float().cpu()
    if weights.dim() == 2:
        weights = weights.unsqueeze(0)
    if weights.dim() != 3:
        raise ValueError(f"weights must be [tgt_len, src_len] or [heads, tgt_len, src_len]: {given_shape}")
    num_heads, tgt_len, src_len = weights.shape
    if len(source_tokens) != src_len or len(target_tokens) != tgt_len:
        raise ValueError(
            f"{len(source_tokens)} source and {len(target_tokens)} target labels for weights of shape "
            f"{given_shape}: expected {src_len} and {tgt_len}."
        )
    panels = [(weights[head], f"head {head}") for head in range(num_heads)]
    if num_heads > 1:
        panels.append((weights.mean(dim=0), "average of heads"))

    plt = _pyplot()
    cell = 0.32
    width = max(3.0, cell * src_len + 1.5)
    height = max(2.5, cell * tgt_len + 1.2)
    figure, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), height), squeeze=False)
    for axis, (panel, label) in zip(axes[0], panels, strict=True):
        axis.imshow(panel.numpy(), cmap="gray", vmin=0.0, vmax=1.0, aspect="equal")
        axis.set_xticks(range(src_len), source_tokens, rotation=90, fontsize=8)
        axis.set_yticks(range(tgt_len), target_tokens, fontsize=8)
        axis.xaxis.tick_top()
        axis.set_xlabel(label)
    if title:
        figure.suptitle(title, fontsize=10)
    return save_figure(figure, path, dpi=120)


def save_figure(figure, path: str | Path, dpi: int) -> Path:
    """Lay out, write (creating the folder) and close a matplotlib figure; returns the path."""
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    _pyplot().close(figure)
    return path


METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF", "exact_match": "exact match", "alignment": "alignment accuracy"}


def plot_by_length(
    series: dict[str, list[dict]], metric: str, path: str | Path, title: str | None = None, ylabel: str | None = None
) -> Path:
    """A line per model of `metric` against the length buckets (as Figure 2 of Bahdanau et al. 2015).

    Args:
        series: model name -> rows with `bucket`, `count` and `metric` keys (e.g. from `scores_by_length`), the
            same buckets in the same order for every model.
        metric: the key to plot, e.g. "bleu" or "exact_match".
        path: the image to write.
    """
    if not series:
        raise ValueError("nothing to plot: no models")
    labels = [[row["bucket"] for row in rows] for rows in series.values()]
    if any(model_labels != labels[0] for model_labels in labels):
        raise ValueError(f"the models have different buckets: {labels}")
    first = next(iter(series.values()))
    ticks = [f"{row['bucket']}\n(n={row['count']})" for row in first]
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.0, 4.0))
    markers = "osD^v<>"
    for index, (name, rows) in enumerate(series.items()):
        values = [float("nan") if row[metric] is None else row[metric] for row in rows]
        axis.plot(range(len(rows)), values, marker=markers[index % len(markers)], label=name)
    axis.set_xticks(range(len(ticks)), ticks)
    axis.set_xlabel("source length (words)")
    axis.set_ylabel(ylabel or METRIC_NAMES.get(metric, metric))
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend()
    if title:
        axis.set_title(title, fontsize=10)
    return save_figure(figure, path, dpi=100)


# The log keys a learning curve is drawn from: training loss, validation loss, validation BLEU.
LEARNING_CURVE_KEYS = ("loss", "eval_loss", "eval_bleu")


def plot_learning_curves(log_history: list[dict], path: str | Path, title: str | None = None) -> Path:
    """Training and validation loss (left) and validation BLEU (right) along a run, to tell a model still learning
    (validation loss falling at the end) from one overfitting its data (validation loss rising while training loss
    falls).

    Args:
        log_history: the run's log records in order, as the Trainer's `state.log_history` or the Accelerate loop's
            `log_history.jsonl`: each with `step`, and `loss` (training), `eval_loss` or `eval_bleu` where logged.
            The x axis is the training minutes (`train_minutes`, written under a time budget) when every record has
            them, else the step.
        path: the image to write.
    """
    by_minutes = bool(log_history) and all("train_minutes" in record for record in log_history)
    x_key = "train_minutes" if by_minutes else "step"

    def series(key: str) -> tuple[list[float], list[float]]:
        points = [(record[x_key], record[key]) for record in log_history if record.get(key) is not None]
        return [x for x, _ in points], [y for _, y in points]

    curves = {key: series(key) for key in LEARNING_CURVE_KEYS}
    if not any(xs for xs, _ in curves.values()):
        raise ValueError("nothing to plot: no record has loss, eval_loss or eval_bleu")
    plt = _pyplot()
    figure, (loss_axis, bleu_axis) = plt.subplots(1, 2, figsize=(10.0, 4.0))
    for key, label, style in (("loss", "training", "-"), ("eval_loss", "validation", "o-")):
        xs, ys = curves[key]
        if xs:
            loss_axis.plot(xs, ys, style, label=label, markersize=3)
    loss_axis.set_ylabel("loss (as trained, label smoothing included)")
    loss_axis.legend()
    xs, ys = curves["eval_bleu"]
    bleu_axis.plot(xs, ys, "o-", color="tab:green", markersize=3)
    bleu_axis.set_ylabel("validation BLEU")
    for axis in (loss_axis, bleu_axis):
        axis.set_xlabel("training minutes" if by_minutes else "step")
        axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=10)
    return save_figure(figure, path, dpi=100)


__all__ = [
    "LEARNING_CURVE_KEYS",
    "METRIC_NAMES",
    "plot_attention",
    "plot_by_length",
    "plot_learning_curves",
    "save_figure",
]
