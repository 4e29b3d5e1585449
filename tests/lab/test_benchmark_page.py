"""docs/benchmark.md and the README's result blocks are what the JSON run records give, and
the README stays a user's document."""
import inspect
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
    (results / f'{entry.record}.json').write_text(__import__('json').dumps(record))
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
