"""What the benchmark and kernel tools share: the losses and inputs they measure, the
environment they ran in, and the JSON they write."""
import json
import os
import platform
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor

Inputs = Dict[str, Tensor]


IMBALANCE = 100.0


def long_tailed_weights(num_classes: int) -> List[float]:
    """``IMBALANCE ** -(c / (C - 1))``: class frequencies decaying exponentially from 1 for
    class 0 to ``1 / IMBALANCE`` for the last (unnormalised)."""
    if num_classes == 1:
        return [1.0]
    return [IMBALANCE**-(c / (num_classes - 1)) for c in range(num_classes)]


def long_tailed_counts(num_classes: int) -> List[int]:
    """Exponentially decaying counts, ``n_0 = 1000`` down to ``n_{C-1} = 10``."""
    return [round(1000 * weight) for weight in long_tailed_weights(num_classes)]


def make_inputs(n: int, num_classes: int, device: str, dtype: torch.dtype,
                seed: int = 0) -> Inputs:
    """RetinaNet-like logits ``N(-4, 2)``, labels (2% positive, background = C), anchor
    weights of ones, the one-hot target (for the baselines) and ``avg_factor`` (positives)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, num_classes, generator=gen) * 2 - 4
    labels = torch.full((n, ), num_classes, dtype=torch.long)
    positive = torch.rand(n, generator=gen) < 0.02
    labels[positive] = torch.randint(0, num_classes, (int(positive.sum()), ), generator=gen)
    one_hot = torch.zeros(n, num_classes)
    one_hot[positive, labels[positive]] = 1
    return dict(logits=logits.to(device, dtype), labels=labels.to(device),
                weight=torch.ones(n, device=device), one_hot=one_hot.to(device, dtype),
                avg_factor=torch.tensor(max(float(positive.sum()), 1.0)).item())


def benchmarked_losses(num_classes: int) -> Dict[str, torch.nn.Module]:
    """Every imbfocal loss of a detection head, as a config builds it, in training mode.

    Counted losses get :func:`long_tailed_counts` (imbalance factor 100), AdaptiveFocalLoss
    with its class weights (``beta=0.99``; its default ``beta=0`` runs the same computation
    with every weight 1); EqualizedFocalLoss starts from a random non-trivial state of its
    gradient statistics.
    """
    import imbfocal.losses as losses
    counts = long_tailed_counts(num_classes)
    gen = torch.Generator().manual_seed(1)
    efl = losses.EqualizedFocalLoss(num_classes=num_classes)
    efl.pos_grad.copy_(torch.rand(num_classes, generator=gen))
    efl.neg_grad.copy_(torch.rand(num_classes, generator=gen) * 4)
    modules = {
        'ClassBalancedFocalLoss': losses.ClassBalancedFocalLoss(class_counts=counts),
        'AdaptiveFocalLoss': losses.AdaptiveFocalLoss(class_counts=counts, beta=0.99),
        'DualFocalLoss': losses.DualFocalLoss(),
        'EqualizedFocalLoss': efl,
        'ParameterFreeLoss': losses.ParameterFreeLoss(),
        'ParameterFreeLoss-mean': losses.ParameterFreeLoss(negative='mean'),
    }
    return {name: module.train() for name, module in modules.items()}


def environment(device: str) -> Dict[str, Any]:
    """Device, GPU name, processor, torch version, threads and the load average now."""
    on_cuda = device.startswith('cuda')
    return dict(device=device, gpu=torch.cuda.get_device_name(device) if on_cuda else None,
                machine=platform.processor() or platform.machine(), torch=torch.__version__,
                threads=torch.get_num_threads(), load_average=list(os.getloadavg()))


def write_report(report: Dict[str, Any], path: Optional[str]) -> Dict[str, Any]:
    """Write ``report`` as indented JSON to ``path`` (if given) and return it."""
    if path:
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(report, f, indent=1)
    return report
