"""Fill the class counts of count-weighted losses from the training dataset."""
import statistics
from typing import Dict, List, Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper

from ..class_counts import ClassCountsMixin, Counts, counts_from_dataset
from ..registry import register


def _summary(counts: List[int], names: List[str]) -> str:
    lo = min(range(len(counts)), key=counts.__getitem__)
    hi = max(range(len(counts)), key=counts.__getitem__)
    zero = sum(c == 0 for c in counts)
    return (f'{len(counts)} classes, min {counts[lo]} ({names[lo]}), median '
            f'{statistics.median(counts):g}, max {counts[hi]} ({names[hi]}), '
            f'{zero} with none')


@register(HOOKS)
class ClassCountsHook(Hook):
    """Count the training dataset's classes for every loss that needs counts and has none.

    Add it with ``custom_hooks=[dict(type='ClassCountsHook')]``. In ``before_train`` it visits
    every ``ClassCountsMixin`` module of ``runner.model`` (DDP unwrapped) and, unless the module
    already holds counts, fills them from ``runner.train_dataloader.dataset`` with that loss's
    own ``count_type`` (see ``imbfocal.class_counts.counts_from_dataset``).

    Counts are "already set" when the module's ``class_counts`` buffer is non-empty: given by
    ``class_counts=`` in the config, or restored from a checkpoint. MMEngine's
    ``Runner.train`` loads / resumes the checkpoint (``load_or_resume``) before the train loop
    calls ``before_train``, so resumed counts are seen here and kept. One exception: counts
    that came from a checkpoint (``load_from`` of a model trained on another dataset) whose
    length differs from the training dataset's number of classes are replaced, with a warning.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        logger = MMLogger.get_current_instance()
        dataset = runner.train_dataloader.dataset
        cache: Dict[str, Counts] = {}
        num_losses = 0
        for name, module in model.named_modules():
            if not isinstance(module, ClassCountsMixin):
                continue
            num_losses += 1
            if module.has_class_counts:
                stale = self._stale_checkpoint_counts(module, len(dataset.metainfo['classes']))
                if stale is None:
                    logger.info(f'ClassCountsHook: {name} already has '
                                f'{module.class_counts.numel()} class counts (from '
                                f'{module.class_counts_source}); kept')
                    continue
                logger.warning(f'ClassCountsHook: {name}: {stale}; recounting')
            if module.count_type not in cache:
                cache[module.count_type] = counts_from_dataset(dataset, module.count_type)
            counts, names = cache[module.count_type]
            module.set_class_counts(counts, names, source='ClassCountsHook')
            logger.info(f'ClassCountsHook: {name} <- training-set {module.count_type} counts: '
                        f'{_summary(counts, names)}')
        if num_losses == 0:
            logger.warning('ClassCountsHook: the model has no loss that takes class counts')

    @staticmethod
    def _stale_checkpoint_counts(module: ClassCountsMixin, num_classes: int) -> Optional[str]:
        """Why counts restored from a checkpoint do not fit the dataset, or None."""
        if (module.class_counts_source == 'checkpoint'
                and module.class_counts.numel() != num_classes):
            return (f'{module.class_counts.numel()} class counts loaded from the checkpoint but '
                    f'the training dataset has {num_classes} classes')
        return None
