"""The README's "Your own dataset" section, followed as written on a generated COCO json."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ('cat', 'dog', 'axolotl')


def _section() -> str:
    text = (ROOT / 'README.md').read_text()
    return text[text.index('## Your own dataset'):text.index('## Data: digits-LT')]


def _write_coco(root: Path, split: str, images: int, seed: int) -> None:
    """``images`` 64x64 images with 1-3 filled boxes each, class = colour; long-tailed."""
    import cv2
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True)
    colours = [(220, 40, 40), (40, 200, 40), (40, 40, 220)]
    out = dict(images=[], annotations=[],
               categories=[dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)])
    for img_id in range(1, images + 1):
        img = np.full((64, 64, 3), 235, np.uint8)
        for _ in range(rng.integers(1, 4)):
            label = int(rng.choice(3, p=[0.7, 0.25, 0.05]))
            x, y = (int(v) for v in rng.integers(0, 40, 2))
            w, h = (int(v) for v in rng.integers(10, 24, 2))
            img[y:y + h, x:x + w] = colours[label]
            out['annotations'].append(dict(
                id=len(out['annotations']) + 1, image_id=img_id, category_id=label + 1,
                bbox=[x, y, w, h], area=w * h, iscrowd=0))
        cv2.imwrite(str(root / split / f'{img_id:04d}.png'), img)
        out['images'].append(dict(id=img_id, file_name=f'{img_id:04d}.png', width=64, height=64))
    (root / 'annotations').mkdir(exist_ok=True)
    (root / 'annotations' / f'{split}.json').write_text(json.dumps(out))


@pytest.mark.slow
def test_own_dataset_section_trains_as_written(tmp_path):
    section = _section()
    data = tmp_path / 'data' / 'my_dataset'
    _write_coco(data, 'train', 12, 0)
    _write_coco(data, 'val', 4, 1)
    copy = re.search(r'^python -m imbfocal\.configs copy .*$', section, re.M).group(0)
    subprocess.run(copy.replace('python', sys.executable, 1).split(), cwd=tmp_path, check=True)
    config = re.search(r'<!-- own-dataset:config -->\n```python\n(.*?)```', section,
                       re.S).group(1)
    path = re.match(r'# (\S+)', config).group(1)
    (tmp_path / path).write_text(config)
    train = re.search(r'^python tools/train\.py (\S+)$', section, re.M).group(1)
    assert train == path
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools/train.py'), train, '--cfg-options',
         'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
         'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
         'default_hooks.logger.interval=1'],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'ClassCountsHook' in log and 'training-set instances counts' in log
    assert re.search(r'coco/bbox_APr: \S+', log) and re.search(r'coco/bbox_mAP: \S+', log)
