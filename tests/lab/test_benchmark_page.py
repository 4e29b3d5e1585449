"""docs/benchmark.md and the README's result blocks are what the JSON run records give, and
the README stays a user's document."""
import inspect
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from imbfocal import losses
from lab import benchmark_page

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / 'README.md'


def test_committed_page_and_readme_blocks_are_what_the_records_give():
    assert benchmark_page.stale() == [], 'run python tools/benchmark_page.py and commit'


def test_check_mode_of_the_tool_agrees(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / 'tools/benchmark_page.py'), '--check'],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_changed_record_makes_the_page_stale(tmp_path):
    """Copy the records, change one run's AP: the page and the README no longer match."""
    import shutil
    results = tmp_path / 'results'
    shutil.copytree(ROOT / 'docs' / 'results', results)
    entry = benchmark_page.LOSSES[0]  # a record the README's which-loss table quotes
    record = benchmark_page.load(entry.record, str(results))
    record['runs'][entry.key][0]['lvis/bbox_mAP'] += 0.05
    (results / f'{entry.record}.json').write_text(json.dumps(record))
    assert set(benchmark_page.stale(str(results))) == {benchmark_page.PAGE,
                                                        benchmark_page.README}


def test_readme_is_short_and_has_no_history():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    hashes = re.findall(r'`[0-9a-f]{7,40}`|\bcommit [0-9a-f]{7,40}\b', text)
    assert not hashes
    for phrase in ('earlier default', 'before this tuning', 'this session'):
        assert phrase not in text


def _readme_defaults() -> dict:
    """``{loss: {parameter: value}}`` from the README's which-loss table."""
    block = re.search(r'<!-- benchmark:losses -->\n(.*?)<!-- /benchmark:losses -->',
                      README.read_text(), re.S).group(1)
    table = {}
    for line in [line for line in block.splitlines() if line.startswith('|')][2:]:
        cells = [c.strip() for c in line.strip('|').split('|')]
        name = cells[0].strip('`')
        table[name] = dict(re.findall(r'`(\w+)=([^`]+)`', cells[2]))
    return table


def test_readme_recommended_settings_are_the_class_defaults():
    table = _readme_defaults()
    assert {'AdaptiveFocalLoss', 'ClassBalancedFocalLoss', 'DualFocalLoss',
            'ParameterFreeLoss', 'EqualizedFocalLoss'} <= set(table)
    for name, settings in table.items():
        signature = inspect.signature(getattr(losses, name).__init__)
        for parameter, value in settings.items():
            assert repr(signature.parameters[parameter].default) == value, (name, parameter)
    assert table['AdaptiveFocalLoss']['lam0'] == '4.0'


@pytest.mark.slow
def test_the_wheel_carries_no_benchmark_harness(tmp_path):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', str(ROOT), '--no-deps',
                    '--no-build-isolation', '-w', str(tmp_path), '-q'], check=True)
    (wheel, ) = tmp_path.glob('imbfocal-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith('imbfocal/losses/') for n in names)
    assert any(n.startswith('imbfocal/.mim/configs/') for n in names)
    assert not [n for n in names if n.startswith('lab/') or 'devtools' in n
                or n.endswith(('runs.py', 'plots.py', 'benchmarking.py'))]


def _fair_record(split: str, rows: dict) -> dict:
    """A record of ``{row: {seed: AP}}`` (every summary metric set to that AP)."""
    keys = ('lvis/bbox_mAP', 'lvis/bbox_mAP_50', 'lvis/bbox_APr', 'lvis/bbox_APc',
            'lvis/bbox_APf')
    return {
        'detector': 'retinanet', 'benchmark': 'lt100', 'split': split, 'reference': 'focal',
        'runs': {row: [dict.fromkeys(keys, ap) for ap in by_seed.values()]
                 for row, by_seed in rows.items()},
        'settings': {row: {'seeds': list(by_seed)} for row, by_seed in rows.items()},
        'minutes': {row: [6.0] * len(by_seed) for row, by_seed in rows.items()},
    }


def test_fair_section_pairs_the_damping_with_afl_on_val_and_introduces_3x(tmp_path):
    """Val: the damping alone against AFL over the seeds both ran (0 and 1; seed 2 of the
    damping has no AFL partner). Damped minus AFL: seed 0 0.71 - 0.70 = +1.0 points, seed 1
    0.70 - 0.72 = -2.0; mean -0.5, sample std sqrt(1.5^2 + 1.5^2) = 2.1."""
    tuned, lam0 = benchmark_page.TUNED, benchmark_page.AFL_LAM0
    focal, afl, damped = f'focal_{tuned}', f'afl_{tuned}-lam{lam0}', f'focal_{tuned}-damped'
    val = _fair_record('val', {focal: {0: 0.69}, afl: {0: 0.70, 1: 0.72},
                               damped: {0: 0.71, 1: 0.70, 2: 0.73}})
    x3 = _fair_record('test', {f'{focal}-3x': {0: 0.75}, f'{afl}-3x': {0: 0.76}})
    (tmp_path / 'lt100_fair_retinanet_val.json').write_text(json.dumps(val))
    (tmp_path / 'lt100_fair_retinanet_3x_test.json').write_text(json.dumps(x3))
    section = benchmark_page.fair_section(str(tmp_path))
    damping_vs_afl = section.split('The damping alone paired with AFL')[1]
    row = next(line for line in damping_vs_afl.splitlines() if line.startswith('| **the damping'))
    assert row.split(' | ')[1:3] == ['2', '-0.5 ± 2.1'], row
    assert benchmark_page.FAIR_3X in section
    assert ('| AFL with class weights (beta 0.99), lam0 4 | 1 | +1.0 |'
            in section.split('Three times')[1])


def test_fair_section_leaves_out_the_damping_against_afl_with_one_shared_seed(tmp_path):
    tuned, lam0 = benchmark_page.TUNED, benchmark_page.AFL_LAM0
    val = _fair_record('val', {f'focal_{tuned}': {0: 0.69}, f'afl_{tuned}-lam{lam0}': {0: 0.7},
                               f'focal_{tuned}-damped': {0: 0.71}})
    (tmp_path / 'lt100_fair_retinanet_val.json').write_text(json.dumps(val))
    section = benchmark_page.fair_section(str(tmp_path))
    assert 'On the tuned schedule, val split' in section
    assert 'The damping alone paired with AFL' not in section


def test_minutes_are_split_by_thread_count_where_the_record_has_it():
    """Two 2-thread runs (6.0 and 5.0 min: mean 5.5) and one 1-thread run (12.0), listed most
    threads first; a record without each run's threads keeps one mean over all its minutes,
    (6.0 + 5.0 + 12.0) / 3 = 7.7."""
    runs = [dict(minutes=6.0, omp_num_threads='2'), dict(minutes=12.0, omp_num_threads='1'),
            dict(minutes=5.0, omp_num_threads='2')]
    record = {'settings': {'row': {'runs': runs}}, 'minutes': {'row': [6.0, 12.0, 5.0]}}
    assert benchmark_page.minutes_cell(record, 'row') == '5.5 (2); 12.0 (1)'
    del runs[1]['omp_num_threads']
    assert benchmark_page.minutes_cell(record, 'row') == '7.7'
    assert benchmark_page.minutes_cell({'settings': {}, 'minutes': {}}, 'row') == 'n/a'
