"""distbp.futures.Future (torch.futures' shape) and the autograd engine's end-of-backward callbacks."""
import threading

import numpy as np
import pytest

import distbp
from distbp import autograd
from distbp import comm as C
from distbp.futures import Future, completed, from_work


def test_future_set_wait_then_and_errors():
    f = Future()
    doubled = f.then(lambda fut: fut.value() * 2)
    assert not f.done() and not doubled.done()
    with pytest.raises(RuntimeError, match="before the Future is done"):
        f.value()
    threading.Timer(0.01, f.set_result, args=(21,)).start()
    assert doubled.wait(timeout=10) == 42 and f.done()
    with pytest.raises(RuntimeError, match="set once"):
        f.set_result(1)
    failed = completed(1).then(lambda fut: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failed.wait()
    with pytest.raises(TimeoutError):
        Future().wait(timeout=0.01)


def test_future_of_an_async_collective():
    comm = C.init("single")
    x = np.arange(4.0)
    fut = from_work(comm.allreduce_async(x)).then(lambda f: f.value() + 1)
    assert np.array_equal(fut.wait(), np.arange(4.0) + 1)
    assert fut.done()


def test_queue_callback_runs_after_every_hook_before_backward_returns():
    w = distbp.tensor(np.ones(3), requires_grad=True)
    b = distbp.tensor(np.ones(3), requires_grad=True)
    events = []

    def hook(p):
        task = autograd.current_graph_task()
        events.append(("hook", task.reaches_leaf(w), task.reaches_leaf(b)))
        if len(events) == 1:
            autograd.queue_callback(lambda: events.append(("end", w.grad is not None)))

    w.register_post_accumulate_grad_hook(hook)
    (w * 2).sum().backward()
    assert events == [("hook", True, False), ("end", True)]
    assert autograd.current_graph_task() is None
    with pytest.raises(RuntimeError, match="only be called while backward"):
        autograd.queue_callback(lambda: None)
