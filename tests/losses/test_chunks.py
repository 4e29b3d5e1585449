"""The CPU fast paths' chunks, run in the caller's thread (default) or on workers: order,
modes and the caller's threads are kept either way."""
import threading

import pytest
import torch

from imbfocal.losses import ClassBalancedFocalLoss, ParameterFreeLoss
from imbfocal.losses.fast import chunks


@pytest.fixture(params=[False, True], ids=['caller', 'workers'])
def small_chunks(request, monkeypatch):
    """Chunks of 16 rows of 5 classes, run in the caller's thread and then on workers."""
    monkeypatch.setitem(chunks.CHUNK_ELEMENTS, 'cpu', 16 * 5)
    enabled = chunks.chunk_workers_enabled()
    chunks.use_chunk_workers(request.param)
    yield request.param
    chunks.use_chunk_workers(enabled)


def test_workers_are_off_by_default():
    """On an idle 2-core machine the workers made a whole RetinaNet training step 1.5x slower
    (docs/design.md), so they are opt-in."""
    assert not chunks.chunk_workers_enabled()


def test_results_in_chunk_order_whatever_the_workers_timing(small_chunks):
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
