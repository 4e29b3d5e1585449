"""A hook for the two-process training tests: each rank writes, every training iteration, the
``train/*`` scalars of its message hub, and at the end of training the buffers of every
loss module (class counts, EFL's statistics, AFL's iteration), to
``<work_dir>/rank<r>.jsonl``. Imported through a config's ``custom_imports``."""
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankRecorderHook(Hook):
    """Record what each rank computes (module docstring)."""

    priority = 'LOWEST'

    def _write(self, runner, record: dict) -> None:
        path = osp.join(runner.work_dir, f'rank{get_rank()}.jsonl')
        with open(path, 'a', encoding='utf-8') as f:
            f.write(json.dumps(record) + '\n')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        scalars = {name: hub.current() for name, hub in runner.message_hub.log_scalars.items()
                   if name.startswith('train/') and name not in ('train/lr', 'train/time',
                                                                 'train/data_time')}
        self._write(runner, dict(iter=runner.iter, **scalars))

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        loss = model.bbox_head.loss_cls
        buffers = {name: value.tolist() for name, value in loss.named_buffers()}
        self._write(runner, dict(final=True, **buffers))
