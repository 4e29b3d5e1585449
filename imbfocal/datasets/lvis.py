"""LVIS v1 dataset that does not need the PyPI ``lvis`` package.

MMDetection's ``LVISV1Dataset`` imports ``lvis`` (lvis-api 0.5.3 crashes on numpy >= 1.24
because of ``np.float``) only to index the annotation json. ``FastLVISV1Dataset`` indexes it
with MMDetection's ``COCO`` wrapper instead and otherwise behaves like ``LVISV1Dataset``: every
category of the file becomes a label, in file order; images, boxes, masks (when present) and
``ignore`` flags are parsed by ``CocoDataset.parse_data_info``.

Image paths: ``data_prefix['img']`` joined with the image's ``file_name`` when the json has
one, else with ``coco_url`` minus ``http://images.cocodataset.org/`` (real LVIS v1 and
digits-LT, giving ``train2017/000000391895.jpg`` or ``train/000001.png``), as MMDetection
does.

Use it for real LVIS v1 as a drop-in replacement (``type='FastLVISV1Dataset'``, the 1,203 LVIS
class names are the default metainfo), and for another LVIS-format file by giving its class
names, e.g. digits-LT::

    dict(type='FastLVISV1Dataset', data_root='data/digits_lt/',
         ann_file='annotations/lvis_v1_train.json', data_prefix=dict(img=''),
         metainfo=dict(classes=('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')))
"""
import copy
from typing import List

from mmdet.datasets import LVISV1Dataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS
from mmengine.fileio import get_local_path
from mmengine.logging import print_log

from ..registry import register

COCO_URL_PREFIX = 'http://images.cocodataset.org/'


@register(DATASETS)
class FastLVISV1Dataset(LVISV1Dataset):
    """LVIS v1 detection dataset indexed without the ``lvis`` package.

    Same arguments as MMDetection's ``LVISV1Dataset``. ``metainfo['classes']`` must have one
    name per category of the annotation file, in file order; names that ``--cfg-options``
    turned into numbers (``'07'`` -> ``7``) are restored from the file.
    """

    def load_data_list(self) -> List[dict]:
        """Load the annotation file into MMDetection data infos.

        Raises:
            ValueError: If the number of categories in the file differs from the number of
                ``metainfo['classes']``.
        """
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            api = COCO(local_path)
        self.cat_ids = [cat['id'] for cat in api.dataset['categories']]
        self._check_classes(api)
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        self.cat_img_map = copy.deepcopy(api.cat_img_map)

        data_list = []
        total_ann_ids = []
        for img_id in api.get_img_ids():
            raw_img_info = dict(api.load_imgs([img_id])[0])
            raw_img_info['img_id'] = img_id
            raw_img_info['file_name'] = image_path(raw_img_info)
            ann_ids = api.get_ann_ids(img_ids=[img_id])
            total_ann_ids.extend(ann_ids)
            data_list.append(self.parse_data_info({
                'raw_ann_info': api.load_anns(ann_ids),
                'raw_img_info': raw_img_info
            }))
        if self.ANN_ID_UNIQUE and len(set(total_ann_ids)) != len(total_ann_ids):
            raise ValueError(f"annotation ids in '{self.ann_file}' are not unique")
        return data_list

    def _check_classes(self, api: COCO) -> None:
        classes = list(self.metainfo['classes'])
        names = [str(cat['name']) for cat in api.dataset['categories']]
        if len(names) == len(classes) and not all(isinstance(c, str) for c in classes):
            classes = self._names_from_numbers(classes, names)
        if len(names) != len(classes):
            raise ValueError(
                f"{self.ann_file} has {len(names)} categories but metainfo['classes'] has "
                f"{len(classes)}; pass metainfo=dict(classes=(...)) listing the file's "
                f'category names in file order, e.g. {tuple(names[:5])}...')
        mismatched = [(c, n) for c, n in zip(classes, names) if c != n]
        if mismatched:
            print_log(f'{type(self).__name__}: {len(mismatched)} class names differ from the '
                      f'category names of {self.ann_file} (labels follow the file order), e.g. '
                      f'{mismatched[:3]}', logger='current', level=30)


    def _names_from_numbers(self, classes: list, names: List[str]) -> List[str]:
        """The file's category names for class names MMEngine's ``--cfg-options`` parsed into
        numbers (``'07'`` arrives as ``7``): kept in ``metainfo`` as strings.

        Raises:
            ValueError: If a number is not the value of the file's name at its position.
        """
        for c, n in zip(classes, names):
            if not isinstance(c, str) and not (n.lstrip('-').isdigit() and int(n) == c):
                raise ValueError(
                    f"metainfo['classes'] holds {c!r} where {self.ann_file} names {n!r}: "
                    'MMEngine parses class names given in --cfg-options as numbers; set them in '
                    'the config file, or leave metainfo to the config')
        self._metainfo['classes'] = tuple(names)
        return list(names)


def image_path(img_info: dict) -> str:
    """Path of an LVIS image relative to ``data_prefix['img']``.

    ``file_name`` when present, else ``coco_url`` without the COCO image server prefix.

    Raises:
        KeyError: If the image has neither ``file_name`` nor ``coco_url``.
    """
    if img_info.get('file_name'):
        return img_info['file_name']
    if 'coco_url' not in img_info:
        raise KeyError(f"LVIS image {img_info.get('id')} has neither 'file_name' nor "
                       "'coco_url'; add one of them to the annotation file")
    return img_info['coco_url'].replace(COCO_URL_PREFIX, '')
