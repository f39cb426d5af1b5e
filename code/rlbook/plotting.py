"""The few figure helpers the chapters share.

Each takes arrays with the seed (or trial) axis first, draws on a given or new
axes, labels what it draws, returns ``(fig, ax)`` and never calls ``show()``.
The core modules never import matplotlib; only this one does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

__all__ = ["mean_and_band", "learning_curve", "violin", "axes"]


def axes(ax=None, figsize=(6.0, 3.6)):
    """``(fig, ax)``: the given axes and its figure, or a new pair."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def mean_and_band(y, confidence: float = 0.95):
    """Mean over the first axis and a Student-t confidence band for it.

    For n seeds with sample standard deviation s, the band is
    mean ± t_{n−1, (1+c)/2} · s / √n. Returns ``(mean, low, high)``. With a single
    seed there is no spread to estimate: the band has zero width (low = high = mean).
    Every entry of ``y`` must be finite (:func:`learning_curve` draws a NaN as a gap).
    """
    return _mean_and_band(y, confidence, finite=True)


def _mean_and_band(y, confidence: float, *, finite: bool):
    """:func:`mean_and_band`; with ``finite=False`` NaN and ±∞ in ``y`` pass through."""
    try:
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"y must be an array of real numbers, got {type(y).__name__}") from err
    if finite and not np.all(np.isfinite(y)):
        raise ValueError(f"y must be finite, got {y[~np.isfinite(y)].ravel()[:3]}")
    if y.ndim < 1 or y.shape[0] < 1:
        raise ValueError(f"y must have a seed axis of length >= 1 first, got shape {y.shape}")
    if (
        not isinstance(confidence, (int, float, np.integer, np.floating))
        or isinstance(confidence, bool)
        or not 0.0 < confidence < 1.0
    ):
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    n = y.shape[0]
    if n == 1:
        return y[0].copy(), y[0].copy(), y[0].copy()
    mean = y.mean(axis=0)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * y.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def learning_curve(
    x,
    y,
    *,
    label: str | None = None,
    ax=None,
    confidence: float = 0.95,
    xlabel: str = "environment steps",
    ylabel: str = "return",
    color=None,
    show_seeds: bool = False,
):
    """Mean of ``y`` (shape [seeds, T]) against ``x`` (shape [T]) with a confidence band."""
    try:
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"y must be an array of real numbers, got {type(y).__name__}") from err
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"x must have one dimension, got shape {x.shape}")
    if y.ndim != 2 or y.shape[1] != x.shape[0]:
        raise ValueError(f"y must have shape [seeds, len(x)] = [*, {x.shape[0]}], got {y.shape}")
    fig, ax = axes(ax)
    mean, low, high = _mean_and_band(y, confidence, finite=False)
    n = y.shape[0]
    text = f"{label} ({n} seeds)" if label else None
    (line,) = ax.plot(x, mean, label=text, color=color)
    ax.fill_between(x, low, high, alpha=0.25, color=line.get_color(), linewidth=0)
    if show_seeds:
        ax.plot(x, y.T, color=line.get_color(), alpha=0.25, linewidth=0.7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if text:
        ax.legend(frameon=False)
    return fig, ax


def violin(
    samples: Mapping[str, Sequence[float]],
    *,
    ax=None,
    ylabel: str = "estimate",
    reference: float | None = None,
    reference_label: str = "true value",
):
    """Violins with box plots inside, one per named sample; an optional reference line."""
    if not samples:
        raise ValueError("samples must name at least one sample")
    names = list(samples)
    data = [np.asarray(samples[k], dtype=float).ravel() for k in names]
    fig, ax = axes(ax)
    pos = np.arange(1, len(names) + 1)
    ax.violinplot(data, positions=pos, showextrema=False)
    ax.boxplot(data, positions=pos, widths=0.15, showfliers=False)
    ax.set_xticks(pos, names)
    ax.set_ylabel(ylabel)
    if reference is not None:
        ax.axhline(reference, color="k", linestyle="--", linewidth=1, label=reference_label)
        ax.legend(frameon=False)
    return fig, ax
