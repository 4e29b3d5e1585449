"""Plots of long-tail results: AP by frequency group, and per-class AP against training count.

Drawn with matplotlib's Agg renderer through ``matplotlib.figure.Figure`` (no pyplot, so no
display is needed and the caller's matplotlib backend is left alone).
"""
import os
from typing import Dict, Mapping, Sequence

import numpy as np

DEFAULT_KEYS = ('AP', 'APr', 'APc', 'APf')


def run_colors(n: int) -> list:
    """``n`` distinct colours, one per run: matplotlib's ``tab10`` up to 10 runs, ``tab20``
    up to 20, then ``tab20`` repeated.

    Args:
        n: Number of runs.

    Returns:
        A list of ``n`` RGBA tuples.
    """
    from matplotlib import colormaps
    cmap = colormaps['tab10' if n <= 10 else 'tab20']
    return [cmap(i % cmap.N) for i in range(n)]


def _save(fig, out_png: str, **savefig_kwargs) -> str:
    """Write ``fig`` to ``out_png`` at 120 dpi, creating parent folders; returns ``out_png``."""
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=120, **savefig_kwargs)
    return out_png


def _legend_outside(ax) -> None:
    """The legend to the right of the axes, where it cannot hide bars or points."""
    ax.legend(fontsize='small', loc='upper left', bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def frequency_ap_figure(results: Mapping[str, Mapping[str, float]],
                        keys: Sequence[str] = DEFAULT_KEYS,
                        title: str = 'AP by class frequency', ylabel: str = 'AP'):
    """The figure of :func:`plot_frequency_ap`, not saved (same arguments, less ``out_png``).

    Returns:
        matplotlib.figure.Figure: One group of bars per key, one bar per run, the legend to the
        right of the axes.

    Raises:
        ValueError: If ``results`` is empty.
    """
    if not results:
        raise ValueError('plot_frequency_ap needs at least one run in results')
    from matplotlib.figure import Figure  # no pyplot: renders with Agg, global state untouched

    names = list(results)
    values = np.array([[_value(results[n], k) for k in keys] for n in names])
    width = 0.8 / len(names)
    x = np.arange(len(keys))
    fig = Figure(figsize=(max(6.0, 1.6 * len(keys) + 0.4 * len(names)), 4.0))
    ax = fig.subplots()
    for i, (name, color) in enumerate(zip(names, run_colors(len(names)))):
        pos = x - 0.4 + width * (i + 0.5)
        bars = ax.bar(pos, np.nan_to_num(values[i], nan=0.0), width, label=name, color=color)
        _annotate(ax, bars, values[i])
    ax.set_xticks(x)
    ax.set_xticklabels(list(keys))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    top = np.nanmax(values) if np.isfinite(values).any() else 1.0
    ax.set_ylim(0, max(top * 1.2, 0.05))
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_frequency_ap(results: Mapping[str, Mapping[str, float]], out_png: str,
                      keys: Sequence[str] = DEFAULT_KEYS, title: str = 'AP by class frequency',
                      ylabel: str = 'AP') -> str:
    """Draw one group of bars per key (AP, APr, APc, APf) with one bar per run.

    Args:
        results: ``{run name: {'AP': .., 'APr': .., 'APc': .., 'APf': ..}}``. A missing key, a
            NaN or a negative value (LVIS's -1 for an empty group) is drawn as an empty slot
            marked "n/a".
        out_png: Output path; parent folders are created.
        keys: Which entries of each run to draw, in order.
        title: Figure title.
        ylabel: Y axis label.

    Returns:
        ``out_png``.

    Raises:
        ValueError: If ``results`` is empty.
    """
    fig = frequency_ap_figure(results, keys, title, ylabel)
    return _save(fig, out_png, bbox_inches='tight')  # the legend sits outside the axes


def _value(run: Mapping[str, float], key: str) -> float:
    value = run.get(key)
    if value is None or not np.isfinite(value) or value < 0:
        return float('nan')
    return float(value)


def _annotate(ax, bars, values: np.ndarray) -> None:
    for bar, value in zip(bars, values):
        label = 'n/a' if np.isnan(value) else f'{value:.3f}'
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha='center', va='bottom', fontsize=7, rotation=90 if len(label) > 4 else 0,
                    xytext=(0, 2), textcoords='offset points')


def running_mean(x: np.ndarray, y: np.ndarray) -> tuple:
    """``(x, y)`` averaged over windows of ``max(3, len / 8)`` points (sorted by ``x``): a
    trend line through a scatter of classes."""
    window = max(3, len(y) // 8)
    kernel = np.ones(window) / window
    return np.convolve(x, kernel, mode='valid'), np.convolve(y, kernel, mode='valid')


def frequency_results(metrics: Mapping[str, float], prefix: str = '') -> Dict[str, float]:
    """Pick AP, APr, APc, APf out of a metric dict, e.g. ``{'lvis/bbox_mAP': ..}``.

    Args:
        metrics: Keys as ``LongTailMetric`` writes them (``[prefix/]bbox_mAP``,
            ``bbox_APr``...).
        prefix: The part before ``mAP`` / ``APr``, e.g. ``'lvis/bbox_'``; found if empty.

    Returns:
        ``{'AP': .., 'AP50': .., 'APr': .., 'APc': .., 'APf': ..}`` for the keys present.
    """
    if not prefix:
        found = [k[:-len('mAP')] for k in metrics if k.endswith('mAP')]
        prefix = found[0] if found else ''
    names = {'AP': 'mAP', 'AP50': 'mAP_50', 'APr': 'APr', 'APc': 'APc', 'APf': 'APf'}
    return {short: float(metrics[prefix + key]) for short, key in names.items()
            if prefix + key in metrics}


def plot_per_class_ap(per_class: Mapping[str, Mapping[str, float]],
                      train_images: Mapping[str, int], out_png: str,
                      title: str = 'AP per class against training images',
                      groups: Sequence[int] = (10, 100)) -> str:
    """One point per class and run: AP against the class's number of training images.

    A trend line per run (the running mean over the classes sorted by training images) makes
    the long tail's slope visible; dashed lines mark the rare / common / frequent bounds.

    Args:
        per_class: ``{run name: {class name: AP}}``; classes missing from ``train_images``
            are left out.
        train_images: ``{class name: training images}``.
        out_png: Output path; parent folders are created.
        title: Figure title.
        groups: Image counts bounding the rare and common groups (LVIS: 10, 100).

    Returns:
        ``out_png``.

    Raises:
        ValueError: If ``per_class`` is empty.
    """
    if not per_class:
        raise ValueError('plot_per_class_ap needs at least one run in per_class')
    from matplotlib.figure import Figure
    fig = Figure(figsize=(8.0, 4.5))
    ax = fig.subplots()
    colors = run_colors(len(per_class))
    for i, ((name, aps), color) in enumerate(zip(per_class.items(), colors)):
        classes = sorted((c for c in aps if c in train_images), key=lambda c: train_images[c])
        x = np.array([train_images[c] for c in classes], dtype=float)
        y = np.array([aps[c] for c in classes], dtype=float)
        jitter = 1 + 0.06 * (i - (len(per_class) - 1) / 2)  # runs side by side on log x
        ax.scatter(x * jitter, y, s=10, alpha=0.55, color=color, label=name)
        if len(y) >= 3:
            ax.plot(*running_mean(x, y), color=color, linewidth=1.5)
    for bound in groups:
        ax.axvline(bound + 0.5, color='0.6', linestyle='--', linewidth=0.8)
    ax.set_xscale('log')
    ax.set_xlabel('training images of the class')
    ax.set_ylabel('AP')
    ax.set_ylim(0, 1)
    ax.set_title(title)
    _legend_outside(ax)
    fig.tight_layout()
    return _save(fig, out_png, bbox_inches='tight')  # the legend sits outside the axes


def plot_class_counts(train_images: Mapping[str, int], out_png: str,
                      title: str = 'training images per class',
                      groups: Sequence[int] = (10, 100)) -> str:
    """Bars of each class's training images, most frequent first, coloured by LVIS group
    (rare <= 10 images, common <= 100, frequent above), with each group's class count.

    Args:
        train_images: ``{class name: training images}``.
        out_png: Output path; parent folders are created.
        title: Figure title.
        groups: Image counts bounding the rare and common groups.

    Returns:
        ``out_png``.
    """
    from matplotlib.figure import Figure
    names = sorted(train_images, key=lambda name: -train_images[name])
    counts = np.array([train_images[name] for name in names])
    group = np.where(counts <= groups[0], 0, np.where(counts <= groups[1], 1, 2))
    fig = Figure(figsize=(9.0, 3.6))
    ax = fig.subplots()
    for g, (label, color) in enumerate([('rare', 'C3'), ('common', 'C1'), ('frequent', 'C0')]):
        idx = np.flatnonzero(group == g)
        ax.bar(idx, counts[idx], width=0.85, color=color,
               label=f'{label}: {len(idx)} classes, {int(counts[idx].sum())} images')
    ax.set_yscale('log')
    ax.set_xlabel('classes, most frequent first')
    ax.set_ylabel('training images')
    ax.set_xticks([])
    ax.set_title(title)
    ax.legend(fontsize='small')
    fig.tight_layout()
    return _save(fig, out_png)


GROUP_NAMES = {'r': 'rare', 'c': 'common', 'f': 'frequent'}


def plot_gradient_groups(logs: Mapping[str, Sequence[Mapping[str, float]]], out_png: str,
                         title: str = 'classification gradient by frequency group',
                         window: int = 20) -> str:
    """Per-iteration gradient norms of the classification logits, one panel per frequency
    group, positives (solid) and negatives (dashed), one colour per run.

    Args:
        logs: ``{run name: [{'iter': .., 'pos_r': .., 'neg_r': .., ...} per iteration]}`` as
            ``lab.mechanism.GradientGroupsHook`` writes them.
        out_png: Output path; parent folders are created.
        title: Figure title.
        window: Iterations of the running mean drawn (the raw norms are noisy).

    Returns:
        ``out_png``.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(12.0, 3.6))
    axes = fig.subplots(1, 3, sharey=True)
    for (name, records), color in zip(logs.items(), run_colors(len(logs))):
        iters = np.array([r['iter'] for r in records], dtype=float)
        for ax, group in zip(axes, GROUP_NAMES):
            for kind, style in (('pos', '-'), ('neg', '--')):
                values = np.array([r[f'{kind}_{group}'] for r in records], dtype=float)
                kernel = np.ones(min(window, len(values))) / min(window, len(values))
                smooth = np.convolve(values, kernel, mode='valid')
                which = 'positives' if kind == 'pos' else 'negatives'
                ax.plot(iters[len(iters) - len(smooth):], smooth, style, color=color,
                        linewidth=1.2, label=f'{name}, {which}')
    for ax, group in zip(axes, GROUP_NAMES.values()):
        ax.set_title(f'{group} classes')
        ax.set_xlabel('iteration')
        ax.set_yscale('log')
    axes[0].set_ylabel('|dL/dx| (L2 norm)')
    fig.suptitle(title)
    _legend_outside(axes[-1])
    fig.tight_layout()
    return _save(fig, out_png, bbox_inches='tight')


def plot_per_class_difference(difference: Mapping[str, float], train_images: Mapping[str, int],
                              out_png: str, title: str = 'AP difference per class',
                              groups: Sequence[int] = (10, 100)) -> str:
    """One point per class: an AP difference (e.g. a loss minus focal loss, mean over seeds)
    against the class's training images, with the running mean and the group bounds.

    Args:
        difference: ``{class name: AP difference}``.
        train_images: ``{class name: training images}``.
        out_png: Output path; parent folders are created.
        title: Figure title.
        groups: Image counts bounding the rare and common groups.

    Returns:
        ``out_png``.
    """
    from matplotlib.figure import Figure
    classes = sorted((c for c in difference if c in train_images), key=lambda c: train_images[c])
    x = np.array([train_images[c] for c in classes], dtype=float)
    y = np.array([difference[c] for c in classes], dtype=float)
    fig = Figure(figsize=(8.0, 4.0))
    ax = fig.subplots()
    ax.axhline(0, color='0.3', linewidth=0.8)
    ax.scatter(x, y, s=12, alpha=0.7, color='C0')
    if len(y) >= 3:
        ax.plot(*running_mean(x, y), color='C3', linewidth=1.5,
                label=f'running mean of {max(3, len(y) // 8)} classes')
        ax.legend(fontsize='small')
    for bound in groups:
        ax.axvline(bound + 0.5, color='0.6', linestyle='--', linewidth=0.8)
    ax.set_xscale('log')
    ax.set_xlabel('training images of the class')
    ax.set_ylabel('AP difference')
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, out_png)
