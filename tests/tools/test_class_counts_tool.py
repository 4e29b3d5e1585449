"""tools/class_counts.py: every argument checked before counting, one-line errors, exit 2.

Counting itself (a config, an annotation json) is tested in tests/test_class_counts.py and
tests/hooks/test_class_counts_hook.py.
"""
import importlib.util
import json
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'class_counts.py'
# 'a' (id 1): 2 boxes in 2 images; 'b' (id 2): 1 box
COCO = dict(images=[dict(id=1), dict(id=2)], categories=[dict(id=1, name='a'),
                                                          dict(id=2, name='b')],
            annotations=[dict(id=1, image_id=1, category_id=1),
                         dict(id=2, image_id=2, category_id=1),
                         dict(id=3, image_id=2, category_id=2)])


def _main(*args):
    spec = importlib.util.spec_from_file_location('class_counts_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(a) for a in args])


def _usage_error(capsys, *args):
    """Run the tool, expecting argparse's exit 2; return its one error line."""
    with pytest.raises(SystemExit) as exit_info:
        _main(*args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err and err.startswith('usage: ')
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize('suffix', ['.JSON', '.Json'])
def test_an_upper_case_json_is_read_as_annotations_not_a_config(tmp_path, suffix):
    """``x.JSON`` used to be handed to Config.fromfile, which counted nothing."""
    ann = tmp_path / f'train{suffix}'
    ann.write_text(json.dumps(COCO))
    assert _main(ann, '--out', tmp_path / 'counts.json') == 0
    data = json.loads((tmp_path / 'counts.json').read_text())
    assert data['counts'] == [2, 1] and data['classes'] == ['a', 'b']


def test_bad_arguments_are_refused_before_counting(tmp_path, capsys):
    ann = tmp_path / 'train.json'
    ann.write_text(json.dumps(COCO))
    out = tmp_path / 'counts.json'
    assert 'missing.json is not a file' in _usage_error(capsys, tmp_path / 'missing.json',
                                                        '--out', out)
    assert '--cfg-options applies to a config' in _usage_error(
        capsys, ann, '--out', out, '--cfg-options', 'a=1')
    assert 'is a folder' in _usage_error(capsys, ann, '--out', tmp_path)
    assert 'does not exist' in _usage_error(capsys, ann, '--out', tmp_path / 'no' / 'o.json')
    assert 'source file itself' in _usage_error(capsys, ann, '--out', ann)
    assert not out.exists()


@pytest.mark.parametrize('config, message', [
    ('x = 1\n', 'has no train_dataloader.dataset to count'),
    ("train_dataloader = dict(dataset=dict(type='NoSuchDataset'))\n",
     'NoSuchDataset is not in the mmdet::dataset registry'),
    ('x = (\n', 'does not load as a config'),
])
def test_a_config_that_cannot_be_counted_is_one_line(tmp_path, capsys, config, message):
    path = tmp_path / 'config.py'
    path.write_text(config)
    assert _main(path, '--out', tmp_path / 'counts.json') == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: ') and message in err, err
    assert not (tmp_path / 'counts.json').exists()
