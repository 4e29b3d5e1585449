"""tools/benchmark_losses.py times the Triton implementation where the kernels run."""
import importlib.util
import json
from pathlib import Path

from conftest import kernel_devices

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'benchmark_losses.py'


def _run_tool(tmp_path, *args):
    """A tiny run of the tool on the kernels' device; the scales of its JSON report."""
    spec = importlib.util.spec_from_file_location('benchmark_losses', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'bench.json'
    tool.main(['--device', kernel_devices()[0], '--coco-n', '64', '--lvis-n', '16',
               '--repeats', '1', '--warmup', '0', '--threads', '1', *args, '--out', str(out)])
    return json.loads(out.read_text())['scales']


def test_tiny_run_times_the_triton_kernels(tmp_path):
    for scale in _run_tool(tmp_path, '--impls', 'triton', 'torch'):
        rows = {(r['loss'], r['impl']): r for r in scale['results']}
        for loss in ('ClassBalancedFocalLoss', 'AdaptiveFocalLoss', 'DualFocalLoss',
                     'EqualizedFocalLoss', 'ParameterFreeLoss', 'ParameterFreeLoss-mean'):
            assert rows[(loss, 'triton')]['status'] == 'ok', rows[(loss, 'triton')]
            assert rows[(loss, 'torch')]['status'] == 'ok'


def test_tilings_give_one_triton_row_each(tmp_path):
    (scale, ) = _run_tool(tmp_path, '--scales', 'coco', '--impls', 'triton', '--losses',
                          'DualFocalLoss', '--tilings', '512x2', '4096x8x8')
    rows = [r for r in scale['results'] if r['loss'] == 'DualFocalLoss']
    assert [r['impl'] for r in rows] == ['triton 512x2x64', 'triton 4096x8x8']
    assert all(r['status'] == 'ok' for r in rows)
