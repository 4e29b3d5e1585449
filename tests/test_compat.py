"""Weights-only loading of MMEngine checkpoints: exactly MMEngine's types, nothing more."""
import io
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from imbfocal.compat import checkpoint_safe_globals


def _global_name(entry) -> str:
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


def _message_hub_checkpoint(path) -> None:
    """What MMEngine's runner saves besides tensors: the message hub's state."""
    hub = MessageHub.get_instance('imbfocal-compat-test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', 0.25)
    hub.update_info('iter', 7)
    torch.save({'message_hub': hub.state_dict(), 'state_dict': {'w': torch.ones(2)}}, path)


def test_allow_list_is_what_a_checkpoint_names(tmp_path):
    path = tmp_path / 'ckpt.pth'
    _message_hub_checkpoint(path)
    named = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    listed = {_global_name(entry) for entry in checkpoint_safe_globals()}
    assert named <= listed
    # Nothing beyond MMEngine's buffer, numpy's array/scalar pieces and the getattr stand-in.
    assert all(name.startswith(('numpy.', 'mmengine.logging')) or name == 'builtins.getattr'
               for name in listed)


def test_message_hub_round_trips_weights_only(tmp_path):
    path = tmp_path / 'ckpt.pth'
    _message_hub_checkpoint(path)
    state = torch.load(path, weights_only=True)
    buffer = state['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx(0.375)  # (0.5 + 0.25) / 2
    assert buffer.statistics('current') == 0.25
    assert state['message_hub']['runtime_info']['iter'] == 7


class _Getattr:
    """Pickles as ``getattr(owner, name)``, the way HistoryBuffer's methods are pickled."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


@pytest.mark.parametrize('owner,name', [(np.ndarray, 'tofile'), (HistoryBuffer, '__init__'),
                                        (HistoryBuffer, 'update')])
def test_getattr_stand_in_refuses_everything_else(tmp_path, owner, name):
    path = tmp_path / 'evil.pth'
    torch.save({'x': _Getattr(owner, name)}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_getattr_stand_in_serves_statistics_methods(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save({'x': _Getattr(HistoryBuffer, 'mean')}, path)
    assert torch.load(path, weights_only=True)['x'] is HistoryBuffer.mean


def test_numpy_arrays_and_scalars_load(tmp_path):
    buf = io.BytesIO()
    torch.save({'a': np.arange(3, dtype=np.float64), 's': np.float32(1.5), 'i': np.int64(3)}, buf)
    buf.seek(0)
    out = torch.load(buf, weights_only=True)
    np.testing.assert_array_equal(out['a'], [0.0, 1.0, 2.0])
    assert out['s'] == np.float32(1.5) and out['i'] == 3
