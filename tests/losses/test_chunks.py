"""The CPU fast paths' chunk workers: order, modes and the caller's threads are kept."""
import threading

import pytest
import torch

from imbfocal.losses import ClassBalancedFocalLoss, ParameterFreeLoss
from imbfocal.losses.fast import chunks


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setitem(chunks.CHUNK_ELEMENTS, 'cpu', 16 * 5)


def test_results_in_chunk_order_whatever_the_workers_timing():
    assert chunks.run_chunks(lambda k: k * k, list(range(20))) == [k * k for k in range(20)]


def test_the_caller_and_new_threads_keep_their_intra_op_threads(small_chunks):
    threads = torch.get_num_threads()
    chunks.run_chunks(lambda k: torch.get_num_threads(), list(range(4)))
    assert torch.get_num_threads() == threads
    seen = []
    worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    assert seen == [threads]  # a thread started later is not left single-threaded


@pytest.mark.parametrize('loss', [ClassBalancedFocalLoss(class_counts=[5, 4, 3, 2, 1]),
                                  ParameterFreeLoss(negative='mean')])
def test_inference_mode_and_no_grad_reach_the_workers(small_chunks, loss):
    """Evaluation under torch.inference_mode() (MMEngine's test loop) with several chunks:
    the workers write into the caller's inference tensors."""
    pred, labels = torch.randn(200, 5), torch.randint(0, 6, (200, ))
    expected = loss(pred, labels, reduction_override='none')
    with torch.inference_mode():
        torch.testing.assert_close(loss(pred, labels, reduction_override='none'), expected)
    with torch.no_grad():
        torch.testing.assert_close(loss(pred, labels, reduction_override='none'), expected)
