"""class_counts=: lists, COCO / LVIS annotation files, counts files, and the errors around them.

Counting an MMDetection dataset object (and tools/class_counts.py on a config) is tested in
tests/hooks/test_class_counts_hook.py, next to the hook that uses it.
"""
import importlib.util
import json
import warnings
from pathlib import Path

import pytest
import torch

from imbfocal.class_counts import load_class_counts, save_class_counts
from imbfocal.losses import AdaptiveFocalLoss, ClassBalancedFocalLoss

ROOT = Path(__file__).resolve().parents[1]

# 3 categories with non-contiguous ids; label order = order of the "categories" list.
# cat 7 'kiwi': 2 boxes in image 1, 1 in image 2 -> 3 instances, 2 images
# cat 3 'fig' : 1 box in image 2                  -> 1 instance,  1 image
# cat 5 'yam' : only a crowd box (not counted)    -> 0 instances, 0 images
COCO = {
    'images': [{'id': 1}, {'id': 2}, {'id': 3}],
    'categories': [{'id': 7, 'name': 'kiwi'}, {'id': 3, 'name': 'fig'}, {'id': 5, 'name': 'yam'}],
    'annotations': [
        {'id': 1, 'image_id': 1, 'category_id': 7},
        {'id': 2, 'image_id': 1, 'category_id': 7},
        {'id': 3, 'image_id': 2, 'category_id': 7},
        {'id': 4, 'image_id': 2, 'category_id': 3},
        {'id': 5, 'image_id': 3, 'category_id': 5, 'iscrowd': 1},
    ],
}
LVIS = {
    'images': [],
    'annotations': [],  # the category fields win over (here absent) annotations
    'categories': [
        {'id': 1, 'name': 'aerosol', 'instance_count': 120, 'image_count': 40, 'frequency': 'f'},
        {'id': 2, 'name': 'banjo', 'instance_count': 3, 'image_count': 2, 'frequency': 'r'},
    ],
}


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _cli():
    spec = importlib.util.spec_from_file_location('class_counts_cli',
                                                  ROOT / 'tools' / 'class_counts.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('count_type, expected', [('instances', [3, 1, 0]), ('images', [2, 1, 0])])
def test_coco_json(tmp_path, count_type, expected):
    counts, names = load_class_counts(_write(tmp_path, 'coco.json', COCO), count_type)
    assert (counts, names) == (expected, ['kiwi', 'fig', 'yam'])


@pytest.mark.parametrize('count_type, expected', [('instances', [120, 3]), ('images', [40, 2])])
def test_lvis_json(tmp_path, count_type, expected):
    counts, names = load_class_counts(str(_write(tmp_path, 'lvis.json', LVIS)), count_type)
    assert (counts, names) == (expected, ['aerosol', 'banjo'])


def test_list_and_loss_buffer():
    assert load_class_counts([4, 0, 2]) == ([4, 0, 2], None)
    loss = ClassBalancedFocalLoss(class_counts=torch.tensor([4, 1, 2]))
    assert loss.class_counts.dtype == torch.long
    assert loss.class_counts.tolist() == [4, 1, 2] and loss.class_counts_source == 'config'


@pytest.mark.filterwarnings('ignore:.*counted as 1:UserWarning')  # 'yam' has none
@pytest.mark.parametrize('count_type', ['instances', 'images'])
def test_counts_file_round_trip_through_cli(tmp_path, count_type, capsys):
    ann = _write(tmp_path, 'coco.json', COCO)
    out = tmp_path / 'counts.json'
    _cli().main([str(ann), '--out', str(out), '--count-type', count_type])
    data = json.loads(out.read_text())
    assert data['format'] == 'imbfocal-class-counts' and data['version'] == 1
    assert data['classes'] == ['kiwi', 'fig', 'yam'] and data['count_type'] == count_type
    assert load_class_counts(out, count_type) == load_class_counts(ann, count_type)
    loss = AdaptiveFocalLoss(class_counts=str(out), count_type=count_type)
    assert loss.class_counts.tolist() == data['counts'] and loss.class_names == data['classes']
    assert '3 classes' in capsys.readouterr().err


def test_counts_file_of_other_count_type_is_refused(tmp_path):
    path = tmp_path / 'counts.json'
    save_class_counts(path, [3, 1], ['a', 'b'], 'images')
    with pytest.raises(ValueError, match="holds images counts.*count_type='images'"):
        load_class_counts(path, 'instances')


def test_missing_counts_error_names_both_fixes():
    loss = ClassBalancedFocalLoss()
    with pytest.raises(RuntimeError) as err:
        loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    assert 'class_counts=' in str(err.value)
    assert "custom_hooks=[dict(type='ClassCountsHook')]" in str(err.value)


def test_length_mismatch_error():
    loss = ClassBalancedFocalLoss(class_counts=[5, 6, 7, 8])
    with pytest.raises(ValueError, match=r'4 class counts .* 3 classes'):
        loss(torch.zeros(2, 3), torch.tensor([0, 3]))


@pytest.mark.parametrize('content, match', [
    ('{not json', 'not a json file'),
    ('[1, 2, 3]', 'neither a counts file'),
    ({'format': 'imbfocal-class-counts', 'version': 9, 'count_type': 'instances',
      'classes': ['a'], 'counts': [1]}, 'version 9'),
    ({'format': 'imbfocal-class-counts', 'version': 1, 'count_type': 'instances',
      'classes': ['a', 'b'], 'counts': [1, -2]}, 'whole numbers >= 0'),
    ({'format': 'imbfocal-class-counts', 'version': 1, 'count_type': 'instances',
      'classes': ['a'], 'counts': [1, 2]}, 'one name per count'),
    ({'format': 'imbfocal-class-counts', 'version': 1, 'counts': [1]}, 'lacks'),
    ({'categories': [{'id': 1, 'name': 'a'}]}, 'neither "annotations"'),
    ({'categories': [{'id': 1}], 'annotations': []}, 'needs "id" and "name"'),
    ({'categories': [{'id': 1, 'name': 'a'}], 'annotations': [{'id': 3, 'category_id': 2,
                                                              'image_id': 1}]},
     'category_id 2'),
    ({'categories': [{'id': 1, 'name': 'a'}], 'annotations': [{'id': 3}]}, 'needs "category_id"'),
])
def test_malformed_files(tmp_path, content, match):
    path = _write(tmp_path, 'bad.json', content if isinstance(content, str) else
                  json.dumps(content))
    with pytest.raises(ValueError, match=match):
        ClassBalancedFocalLoss(class_counts=str(path))


def test_bad_arguments():
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_class_counts('/nonexistent/counts.json')
    for bad in ([1.5, 2], [True, 3], [], [3, -1], 12, torch.tensor([1.5]), [float('nan')],
                torch.tensor([[1, 2]])):
        with pytest.raises(ValueError, match='class counts'):
            load_class_counts(bad)


def test_numpy_and_integral_counts_are_taken():
    """numpy integers (counts computed with numpy) and whole floats (counts read from a
    float array) are counts; the message for the rest says what is accepted."""
    import numpy as np
    assert load_class_counts(np.array([3, 0, 7])) == ([3, 0, 7], None)
    assert load_class_counts([np.int64(4), 2.0, np.float32(1)]) == ([4, 2, 1], None)
    assert load_class_counts(torch.tensor([5.0, 1.0])) == ([5, 1], None)
    with pytest.raises(ValueError, match='whole numbers >= 0'):
        load_class_counts([2.5, 1])
    with pytest.raises(ValueError, match='count_type'):
        ClassBalancedFocalLoss(class_counts=[1, 2], count_type='boxes')


def test_zero_count_warning_once(tmp_path):
    path = tmp_path / 'counts.json'
    save_class_counts(path, [0, 5, 0], ['kiwi', 'fig', 'yam'], 'instances')
    expected = r'2 classes have no .* are counted as 1: 0 \(kiwi\), 2 \(yam\)'
    with pytest.warns(UserWarning, match=expected):
        loss = ClassBalancedFocalLoss(class_counts=str(path))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        loss(torch.zeros(2, 3), torch.tensor([0, 3]))
        loss(torch.zeros(2, 3), torch.tensor([1, 3]))
        loss.load_state_dict(loss.state_dict())
    # without names, the warning names the indices
    with pytest.warns(UserWarning, match=r'1 class has no training .* is counted as 1: 1$'):
        ClassBalancedFocalLoss(class_counts=[3, 0])
