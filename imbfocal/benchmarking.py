"""What every benchmark report records: the environment it ran in, and the JSON it writes."""
import json
import os
import platform
from typing import Any, Dict, Optional

import torch


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
