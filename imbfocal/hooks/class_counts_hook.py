"""Fill the class counts of count-weighted losses from the training dataset."""
import statistics
from typing import Dict, List, Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper

from ..class_counts import ClassCountsMixin, Counts, counts_from_dataset
from ..registry import register


def _summary(counts: List[int], names: Optional[List[str]]) -> str:
    names = names or [str(i) for i in range(len(counts))]
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
    every ``ClassCountsMixin`` module of ``runner.model`` (DDP unwrapped) and decides its counts
    by the rules below; those it counts come from ``runner.train_dataloader.dataset`` with that
    loss's own ``count_type`` (see ``imbfocal.class_counts.counts_from_dataset``).

    Which counts a loss trains with:

    * given by ``class_counts=`` in the config: always those (a checkpoint never replaces them);
      if they name their classes (an annotation or counts file) and the names differ from the
      training dataset's, a warning names both;
    * none configured, resuming (``resume=True``): the checkpoint's, as the run left them;
    * none configured, fine-tuning from ``load_from``: the training dataset's, counted here (a
      warning says so when they differ from the checkpoint's);
    * none at all: the training dataset's.

    MMEngine's ``Runner.train`` loads or resumes the checkpoint before the train loop calls
    ``before_train``, so checkpoint counts are in the buffer when this hook runs.

    Args:
        count_type: Not taken here: each loss counts what its own ``count_type`` says. Giving
            it raises a ValueError that names where it goes.
    """

    priority = 'NORMAL'

    def __init__(self, count_type: Optional[str] = None) -> None:
        if count_type is not None:
            raise ValueError(
                f'ClassCountsHook takes no count_type (got {count_type!r}): set it on the loss, '
                f'e.g. loss_cls=dict(..., count_type={count_type!r}); the hook counts what each '
                'loss asks for')

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
            classes = [str(c) for c in dataset.metainfo['classes']]
            if module.class_counts_source == 'config':
                self._check_names(name, module, classes, logger)
                logger.info(f'ClassCountsHook: {name} keeps its {module.class_counts.numel()} '
                            'class counts from the config')
                continue
            resuming = bool(getattr(runner, '_resume', False))
            if module.class_counts_source == 'checkpoint' and resuming:
                if module.class_counts.numel() == len(classes):
                    logger.info(f'ClassCountsHook: {name} keeps the '
                                f'{module.class_counts.numel()} class counts it resumed with')
                    continue
                logger.warning(f'ClassCountsHook: {name}: {module.class_counts.numel()} class '
                               f'counts resumed from the checkpoint but the training dataset '
                               f'has {len(classes)} classes; recounting')
            if module.count_type not in cache:
                cache[module.count_type] = counts_from_dataset(dataset, module.count_type)
            counts, names = cache[module.count_type]
            if module.class_counts_source == 'checkpoint' and not resuming and \
                    module.class_counts.tolist() != list(counts):
                logger.warning(f'ClassCountsHook: {name}: the load_from checkpoint had other '
                               f'class counts ({_summary(module.class_counts.tolist(), None)}); '
                               'fine-tuning counts the training dataset instead')
            module.set_class_counts(counts, names, source='ClassCountsHook')
            logger.info(f'ClassCountsHook: {name} <- training-set {module.count_type} counts: '
                        f'{_summary(counts, names)}')
        if num_losses == 0:
            logger.warning('ClassCountsHook: the model has no loss that takes class counts')

    @staticmethod
    def _check_names(name: str, module: ClassCountsMixin, classes: List[str],
                     logger: MMLogger) -> None:
        """Warn, naming both, when configured counts name other classes than the dataset."""
        names = module.class_names
        if names is not None and list(names) != classes:
            differ = [(i, a, b) for i, (a, b) in enumerate(zip(names, classes)) if a != b]
            logger.warning(
                f'ClassCountsHook: {name}: the configured class counts name {len(names)} '
                f'classes, the training dataset {len(classes)}; they differ at '
                f'{len(differ)} positions, first {differ[:3]} (index, counts, dataset). The '
                'configured counts are used as given: check class_counts= or drop it to count '
                'the dataset')
