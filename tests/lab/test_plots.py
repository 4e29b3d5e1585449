"""The plots write PNGs."""
import os

import pytest

from lab.plots import frequency_results, plot_frequency_ap


def test_plot_frequency_ap_writes_png(tmp_path):
    results = {
        'focal': dict(AP=0.31, APr=0.05, APc=0.22, APf=0.41),
        'efl': dict(AP=0.33, APr=0.12, APc=0.25, APf=0.40),
        'pf (no rare)': dict(AP=0.30, APr=-1.0, APc=0.2, APf=0.39),  # empty group: n/a
    }
    out = plot_frequency_ap(results, str(tmp_path / 'sub' / 'freq.png'))
    data = (tmp_path / 'sub' / 'freq.png').read_bytes()
    assert out.endswith('freq.png') and len(data) > 1000
    assert data[:8] == b'\x89PNG\r\n\x1a\n'


def test_plot_frequency_ap_needs_results(tmp_path):
    with pytest.raises(ValueError, match='at least one run'):
        plot_frequency_ap({}, str(tmp_path / 'x.png'))


def test_frequency_results_picks_metric_keys():
    metrics = {'lvis/bbox_mAP': 0.3, 'lvis/bbox_APr': 0.1, 'lvis/bbox_APc': 0.2,
               'lvis/bbox_APf': 0.4, 'lvis/bbox_mAP_50': 0.5}
    assert frequency_results(metrics) == dict(AP=0.3, AP50=0.5, APr=0.1, APc=0.2, APf=0.4)


def test_per_class_plot_and_class_count_histogram(tmp_path):
    from lab.plots import plot_class_counts, plot_per_class_ap
    train = {f'{k:02d}': max(1, 300 // (k + 1)) for k in range(40)}
    per_class = {'focal': {c: 0.5 + 0.01 * (i % 7) for i, c in enumerate(train)},
                 'afl': {c: 0.6 for c in list(train)[:30]}}  # classes may be missing
    png = plot_per_class_ap(per_class, train, str(tmp_path / 'a' / 'per_class.png'))
    assert os.path.getsize(png) > 1000
    png = plot_class_counts(train, str(tmp_path / 'counts.png'))
    assert os.path.getsize(png) > 1000
    with pytest.raises(ValueError, match='at least one run'):
        plot_per_class_ap({}, train, str(tmp_path / 'x.png'))


@pytest.mark.parametrize('n', [1, 3, 10, 12, 20])
def test_run_colors_are_distinct(n):
    from lab.plots import run_colors
    colors = run_colors(n)
    assert len(colors) == n and len(set(colors)) == n  # tab10 repeats after 10: tab20 then


def test_run_colors_repeat_past_twenty():
    from lab.plots import run_colors
    colors = run_colors(21)
    assert len(set(colors)) == 20 and colors[20] == colors[0]


def test_frequency_legend_sits_outside_the_bars():
    from lab.plots import frequency_ap_figure
    results = {f'run{i}': dict(AP=0.7, APr=0.6, APc=0.7, APf=0.75) for i in range(12)}
    fig = frequency_ap_figure(results)
    fig.canvas.draw()  # Figure() comes with an Agg canvas
    ax = fig.axes[0]
    legend, axes_box = ax.get_legend(), ax.get_window_extent()
    assert len(legend.get_texts()) == 12
    assert legend.get_window_extent().x0 >= axes_box.x1  # never over a bar
    assert len({bar.get_facecolor() for bar in ax.patches}) == 12  # one colour per run
