"""tools/benchmark_losses.py times the Triton implementation where the kernels run."""
import importlib.util
import json
from pathlib import Path

from conftest import kernel_devices

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'benchmark_losses.py'


def test_tiny_run_times_the_triton_kernels(tmp_path):
    spec = importlib.util.spec_from_file_location('benchmark_losses', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'bench.json'
    tool.main(['--device', kernel_devices()[0], '--coco-n', '64', '--lvis-n', '16',
               '--repeats', '1', '--warmup', '0', '--threads', '1', '--impls', 'triton',
               'torch', '--out', str(out)])
    for scale in json.loads(out.read_text())['scales']:
        rows = {(r['loss'], r['impl']): r for r in scale['results']}
        for loss in ('ClassBalancedFocalLoss', 'AdaptiveFocalLoss', 'DualFocalLoss',
                     'EqualizedFocalLoss', 'ParameterFreeLoss'):
            assert rows[(loss, 'triton')]['status'] == 'ok', rows[(loss, 'triton')]
            assert rows[(loss, 'torch')]['status'] == 'ok'
