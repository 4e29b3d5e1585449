"""Smoke test of tools/benchmark_losses.py at a tiny size: it runs and writes its JSON schema.

Benchmarks are not tests: no time is asserted here.
"""
import importlib.util
import json
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'benchmark_losses.py'
ROW_KEYS = {'loss', 'impl', 'status', 'time_ms_median', 'time_ms_min', 'time_ms_max',
            'peak_extra_bytes', 'peak_extra_logits', 'speedup_vs_mmdet', 'x_floor'}


def _load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_losses', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_cpu_run_writes_json(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    _load_tool().main(['--coco-n', '64', '--lvis-n', '16', '--repeats', '1', '--warmup', '0',
                       '--threads', '1', '--impls', 'fused', 'reference', '--out', str(out)])
    report = json.loads(out.read_text())
    assert report['config']['device'] == 'cpu' and report['config']['threads'] == 1
    assert len(report['config']['load_average']) == 3
    assert [s['scale'] for s in report['scales']] == ['coco', 'lvis']
    for scale in report['scales']:
        assert (scale['n'], scale['num_classes']) in ((64, 80), (16, 1203))
        rows = {(r['loss'], r['impl']): r for r in scale['results']}
        assert ('ClassBalancedFocalLoss', 'fused') in rows
        assert ('ClassBalancedFocalLoss', 'reference') in rows
        assert ('ParameterFreeLoss', 'reference') in rows
        for row in scale['results']:
            if row['loss'].startswith('torchvision') and row['status'] == 'not installed':
                continue
            assert row['status'] == 'ok', row
            assert ROW_KEYS <= set(row), row
            assert row['time_ms_median'] > 0 and row['peak_extra_bytes'] > 0
    assert '| loss | impl | time ms (median) |' in capsys.readouterr().out


def test_busy_mode_runs_and_stops_its_spinners(tmp_path):
    before = _spinners()
    out = tmp_path / 'busy.json'
    _load_tool().main(['--scales', 'coco', '--coco-n', '64', '--repeats', '1', '--warmup', '0',
                       '--threads', '1', '--losses', 'ClassBalancedFocalLoss', '--busy', '1',
                       '--out', str(out)])
    report = json.loads(out.read_text())
    assert report['config']['busy_processes'] == 1
    assert report['scales'][0]['results'][0]['status'] == 'ok'
    assert _spinners() == before  # the competing process is gone
    # --losses picks imbfocal's losses only: every baseline keeps its row (torchvision's,
    # installed or not, was dropped)
    assert [row['loss'] for row in report['scales'][0]['results']] == [
        'mmdet FocalLoss', 'torchvision sigmoid_focal_loss', 'floor (copy of logits)',
        'ClassBalancedFocalLoss']


def _spinners():
    """Processes running ``while True: pass`` (Linux's /proc)."""
    count = 0
    for cmdline in Path('/proc').glob('[0-9]*/cmdline'):
        try:
            count += b'while True: pass' in cmdline.read_bytes()
        except OSError:  # a process that ended meanwhile
            pass
    return count


def _usage_error(capsys, *args):
    """Run the tool, expecting argparse's exit 2 before anything is timed; return the error."""
    with pytest.raises(SystemExit) as exit_info:
        _load_tool().main(['--scales', 'coco', '--coco-n', '64', '--repeats', '1', '--warmup',
                           '0', '--threads', '1', *map(str, args)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ''  # no scale was timed
    assert 'Traceback' not in captured.err and captured.err.startswith('usage: ')
    return captured.err.strip().splitlines()[-1]


def test_unknown_losses_are_refused_naming_the_known_ones(capsys):
    """``--losses AFL`` used to time only the baselines and report nothing for AFL."""
    error = _usage_error(capsys, '--losses', 'AFL', 'DualFocalLoss')
    assert "--losses: unknown ['AFL']" in error
    assert "'AdaptiveFocalLoss'" in error and "'ParameterFreeLoss-mean'" in error


@pytest.mark.parametrize('args, message', [
    (['--losses', 'DualFocalLoss', 'DualFocalLoss'], "--losses names ['DualFocalLoss'] more "
     'than once'),
    (['--impls', 'fused', 'fused'], "--impls names ['fused'] more than once"),
    (['--scales', 'coco', 'coco'], "--scales names ['coco'] more than once"),
    (['--repeats', '0'], 'argument --repeats: must be an integer >= 1, got 0'),
    (['--coco-n', '-5'], 'argument --coco-n: must be an integer >= 1, got -5'),
    (['--device', 'tpu'], "--device 'tpu' is not a device"),
    (['--device', 'meta'], "--device 'meta': give cpu or cuda"),
])
def test_bad_arguments_stop_the_tool_before_it_times_anything(capsys, args, message):
    assert message in _usage_error(capsys, *args)


def test_an_unusable_out_is_refused_before_the_benchmark(tmp_path, capsys):
    """A bad --out used to fail after the whole benchmark had run."""
    error = _usage_error(capsys, '--out', tmp_path / 'no' / 'such' / 'bench.json')
    assert 'does not exist' in error
    assert 'is a folder' in _usage_error(capsys, '--out', tmp_path)
    assert list(tmp_path.iterdir()) == []
