"""Reverse-mode autodiff engine: `Function` (the one extension point), grad mode, and `backward`.

Every differentiable op in distbp is a `Function` subclass with `forward` and `backward` side by side
(the built-in primitives live in distbp/ops/). Everything else (softmax's callers, mean, var,
cross_entropy, ...) is composed from them and owns no backward.

Writing your own op (same protocol as torch.autograd.Function)::

    class Square(Function):
        @staticmethod
        def forward(ctx, x):                 # positional args: numpy arrays (Tensors are unwrapped)
            ctx.x = x                        # save whatever backward needs on ctx
            return x * x                     # return ONE numpy array
        @staticmethod
        def backward(ctx, grad_output):      # grad_output has the output's shape
            return 2 * ctx.x * grad_output   # one grad per positional input (tuple if several);
                                             # None for inputs that need no grad
    y = Square.apply(t)                      # keyword arguments are passed to forward unchanged

Rules the engine enforces or relies on:
  * positional args of `apply` are the op's inputs: Tensors, numpy arrays or python scalars
    (non-Tensors are constants and get no grad); keyword args are options.
  * `ctx.needs_input_grad[i]` says whether input i needs a gradient; skip work when it is False.
  * each returned grad must have exactly the input's shape (undo broadcasting with `unbroadcast`).
  * backward must not modify grad_output in place (it may be shared with other nodes).
  * `backward` is called at most once per node; afterwards the node is freed (its attributes are
    dropped) unless `backward(retain_graph=True)` was used.

While backward runs, `current_graph_task()` says which nodes and hooked leaves it reaches, and
`queue_callback(fn)` (torch's `Variable._execution_engine.queue_callback`) runs fn when the pass is
over: the data-parallel reducer finishes its reduction there, so backward() returns with gradients
reduced.
"""
import threading

import numpy as np

_Tensor = None  # distbp.tensor.Tensor, set by distbp/tensor.py at import (avoids a circular import)


# ---------------------------------------------------------------- grad mode (thread-local, like torch)

class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()


def is_grad_enabled():
    return _mode.enabled


def _in_mode(func, mode):
    """func wrapped so that grad mode is `mode` while it runs (the decorator form of the modes)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        prev = _mode.enabled
        _mode.enabled = mode
        try:
            return func(*args, **kwargs)
        finally:
            _mode.enabled = prev
    return wrapper


class _GradModeContext:
    """Context manager that is also a decorator (`@distbp.no_grad()` or `@distbp.no_grad`)."""
    enabled = True

    def __new__(cls, orig_func=None):
        self = super().__new__(cls)
        if orig_func is not None and callable(orig_func):  # bare decorator: @no_grad
            return self(orig_func)
        return self

    def __enter__(self):
        self._prev = _mode.enabled
        _mode.enabled = self.enabled

    def __exit__(self, *exc):
        _mode.enabled = self._prev
        return False

    def __call__(self, func):
        return _in_mode(func, self.enabled)


class no_grad(_GradModeContext):
    """Disable graph building: ops on Tensors return results with requires_grad=False."""
    enabled = False


class enable_grad(_GradModeContext):
    """Re-enable graph building inside a no_grad region."""
    enabled = True


class inference_mode(_GradModeContext):
    """torch.inference_mode(mode=True): here the same as no_grad; mode=False leaves grad mode as is."""
    enabled = False

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):  # bare decorator: @inference_mode
            return super().__new__(cls, mode)
        self = super().__new__(cls)
        self._active = bool(mode)
        return self

    def __enter__(self):
        self._prev = _mode.enabled
        if getattr(self, "_active", True):
            _mode.enabled = False


class set_grad_enabled:
    """set_grad_enabled(mode): sets grad mode at once (a plain call), restores it when used as a
    context manager or decorator, as torch does."""

    def __init__(self, mode):
        self._prev = _mode.enabled
        self.mode = bool(mode)
        _mode.enabled = self.mode

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        _mode.enabled = self._prev
        return False

    def __call__(self, func):
        _mode.enabled = self._prev  # as a decorator the mode applies only during calls
        return _in_mode(func, self.mode)


# ---------------------------------------------------------------- helpers for backward rules

def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`: undoes numpy broadcasting (the only place that does)."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=False)
    return grad.reshape(shape)


# ---------------------------------------------------------------- Function

class Function:
    """Base class of every differentiable op; the instance is the graph node (`ctx`).

    See the module docstring for the protocol. `ctx.parents` holds the positional inputs,
    `ctx.edges` the graph node of each when the op ran (an in-place op may rebase the tensor
    later) and `ctx.needs_input_grad` one bool per input; all are dropped when the node is freed.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        T = _Tensor
        arrays = []
        needs = []
        edges = []  # each input's graph node *now*: an in-place op may later rebase the tensor
        any_grad = False
        for a in args:
            if isinstance(a, T):
                arrays.append(a.data)
                r = a.requires_grad
                needs.append(r)
                edges.append(a._ctx)
                any_grad = any_grad or r
            else:
                arrays.append(a)
                needs.append(False)
                edges.append(None)
        ctx = cls.__new__(cls)
        ctx.needs_input_grad = needs
        out = cls.forward(ctx, *arrays, **kwargs)
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        t = T.__new__(T)
        t.data = out
        t.grad = None
        t._hooks = None
        if any_grad and _mode.enabled:
            ctx.parents = args
            ctx.edges = edges
            t.requires_grad = True
            t._ctx = ctx
        else:
            t.requires_grad = False
            t._ctx = None
        return t


# ---------------------------------------------------------------- the engine

_FREED = ("Trying to backward through the graph a second time (or use a result after its graph was "
          "freed by backward). Pass retain_graph=True to the first backward() to keep the graph.")


def _topo_order(root):
    """Nodes reachable from `root` in post-order, found iteratively (deep graphs are fine).

    Also counts, for every leaf with post-accumulate-grad hooks, how many graph edges feed it,
    so the hooks can fire as soon as its last contribution has arrived.
    """
    order, expanded, done = [], set(), set()
    pending = {}  # id(leaf) -> number of edges still to deliver
    stack = [root]
    while stack:
        node = stack[-1]
        if node in expanded:
            stack.pop()
            if node not in done:
                done.add(node)
                order.append(node)
            continue
        expanded.add(node)
        parents = getattr(node, "parents", None)
        if parents is None:
            raise RuntimeError(_FREED)
        for p, need, c in zip(parents, node.needs_input_grad, node.edges):
            if not need:
                continue
            if c is None:
                if p._hooks:
                    pending[id(p)] = pending.get(id(p), 0) + 1
            elif c not in expanded:
                stack.append(c)
    return order, pending, expanded


class GraphTask:
    """The backward() in progress on this thread: the graph nodes it reaches, the hooked leaves it
    will deliver a gradient to, and the callbacks to run once the pass is over (FIFO; a callback
    may queue more)."""
    __slots__ = ("nodes", "leaves", "callbacks", "__weakref__")

    def __init__(self, nodes, leaves):
        self.nodes, self.leaves, self.callbacks = nodes, leaves, []

    def reaches(self, node):
        """Whether this backward goes through graph node `node` (a Function, i.e. a tensor's _ctx)."""
        return node in self.nodes

    def reaches_leaf(self, tensor):
        """Whether this backward delivers a gradient to `tensor`, a leaf with a post-accumulate hook."""
        return id(tensor) in self.leaves


class _Tasks(threading.local):
    stack = ()


_tasks = _Tasks()


def current_graph_task():
    """The GraphTask of the backward() running on this thread, or None."""
    return _tasks.stack[-1] if _tasks.stack else None


def queue_callback(callback):
    """Run callback() at the end of the backward() in progress (after every gradient is
    accumulated and every hook has fired), before backward() returns. Only valid during backward."""
    task = current_graph_task()
    if task is None:
        raise RuntimeError("queue_callback() can only be called while backward() runs (from a hook)")
    task.callbacks.append(callback)


def _run(task, body):
    """Run the pass `body()` as `task`, then its queued callbacks (only if the pass succeeded)."""
    _tasks.stack = _tasks.stack + (task,)
    try:
        body()
        while task.callbacks:
            task.callbacks.pop(0)()
    finally:
        _tasks.stack = _tasks.stack[:-1]


def _accumulate_leaf(t, g, fresh):
    """Add g into leaf t.grad. `fresh`: g is a new array nobody else references (may be stolen)."""
    if type(g) is not np.ndarray or g.dtype != t.data.dtype:
        g = np.asarray(g, dtype=t.data.dtype)
        fresh = fresh or g.base is None
    if t.grad is None:
        t.grad = g if (fresh and g.flags.owndata and g.flags.writeable) else g.copy()
    else:
        t.grad += g


def _fire_hooks(t):
    for hook in list(t._hooks["post_acc"].values()):
        hook(t)


def backward(root, grad, retain_graph=False):
    """Backpropagate `grad` (same shape as root) from tensor `root` into every leaf's `.grad`."""
    if root.data.shape != grad.shape:
        raise RuntimeError(f"backward: grad of shape {grad.shape} given for a tensor of shape "
                           f"{root.data.shape}")
    if root._ctx is None:  # backward on a leaf
        def leaf():
            _accumulate_leaf(root, grad, False)
            if root._hooks and root._hooks.get("post_acc"):
                _fire_hooks(root)
        return _run(GraphTask(set(), {id(root): 1}), leaf)
    order, pending, nodes = _topo_order(root._ctx)
    _run(GraphTask(nodes, pending), lambda: _backward_pass(root, grad, order, pending,
                                                                  retain_graph))


def _backward_pass(root, grad, order, pending, retain_graph):
    grads = {root._ctx: grad}
    for node in reversed(order):
        g = grads.pop(node, None)
        keep = node.__dict__.get("_retained")
        if keep is not None and g is not None:
            out = keep()
            if out is not None:
                out.grad = g.copy() if out.grad is None else out.grad + g
        parents = node.parents
        edges = node.edges
        needs = node.needs_input_grad
        in_grads = ()
        if g is not None:
            in_grads = type(node).backward(node, g)
            if type(in_grads) is not tuple:
                in_grads = tuple(in_grads) if isinstance(in_grads, list) else (in_grads,)
            if len(in_grads) < len(parents) and any(needs[len(in_grads):]):
                raise RuntimeError(f"{type(node).__name__}.backward returned {len(in_grads)} grads "
                                   f"for {len(parents)} inputs")
        for i, p in enumerate(parents):
            if not needs[i]:
                continue
            pg = in_grads[i] if i < len(in_grads) else None
            c = edges[i]
            if pg is not None:
                shape = np.shape(pg)
                if shape != p.data.shape:
                    raise RuntimeError(f"{type(node).__name__}.backward returned a grad of shape "
                                       f"{shape} for input {i} of shape {p.data.shape}")
                if c is None:
                    # the grad may be stolen only if it is a fresh array not handed out elsewhere
                    fresh = pg is not g and not any(pg is q for j, q in enumerate(in_grads) if j != i)
                    _accumulate_leaf(p, pg, fresh)
                else:
                    prev = grads.get(c)
                    grads[c] = pg if prev is None else prev + pg
            if c is None and p._hooks and id(p) in pending:
                pending[id(p)] -= 1
                if pending[id(p)] == 0:
                    _fire_hooks(p)
        if not retain_graph:
            node.__dict__.clear()  # drop parents and saved arrays: frees the graph as we go
