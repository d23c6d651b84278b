"""Future: the result of work that may still be running (torch.futures.Future's shape).

    fut = Future()                       # made by whoever will produce the value
    fut.set_result(array)                # ... later, maybe on another thread
    fut.wait()                           # blocks until set; raises the error if one was set
    fut.then(lambda f: f.value() / 2)    # a new Future of the callback's result

A communication hook (distbp.parallel.DistributedDataParallel.register_comm_hook) returns one; a
Work handle of an async collective becomes one with `from_work(work)`.

`then` callbacks run once, when the value is set, on the thread that sets it (at once if the
value is already there), as in torch; an error in a callback becomes the error of the Future it
returned. A Future of a collective is resolved by the first thread that waits on it or on one of
its `then` Futures (never by the communication thread, which must not run user code).
"""
import threading

_UNSET = object()


class Future:
    def __init__(self):
        self._cond = threading.Condition()
        self._value = _UNSET
        self._error = None
        self._callbacks = []
        # (ready() -> bool, fetch(timeout) -> value) when the value comes from running work (an
        # async collective); pulled by the first thread that asks, never by the work's own thread
        self._source = None
        self._pull_lock = threading.Lock()

    def _resolved(self):
        return self._value is not _UNSET or self._error is not None

    def done(self):
        """True once a value or an error has been set."""
        if not self._resolved() and self._source is not None and self._source[0]():
            self._pull(None)
        return self._resolved()

    def wait(self, timeout=None):
        """Block until done; return the value or raise the error."""
        if not self._resolved() and self._source is not None:
            self._pull(timeout)
        with self._cond:
            if not self._cond.wait_for(self._resolved, timeout):
                raise TimeoutError(f"Future not done after {timeout}s")
        return self.value()

    def value(self):
        """The value of a done Future (raises its error); RuntimeError if not done yet."""
        if self._error is not None:
            raise self._error
        if self._value is _UNSET:
            raise RuntimeError("Future.value() called before the Future is done; call wait()")
        return self._value

    def set_result(self, result):
        self._set(result, None)

    def set_exception(self, error):
        self._set(_UNSET, error)

    def _set(self, result, error):
        with self._cond:
            if self._resolved():
                raise RuntimeError("Future already has a result; a Future is set once")
            self._value, self._error = result, error
            callbacks, self._callbacks = self._callbacks, []
            self._cond.notify_all()
        for fn in callbacks:
            fn()

    def _pull(self, timeout):
        with self._pull_lock:
            if self._resolved():
                return
            try:
                value = self._source[1](timeout)
            except TimeoutError:
                raise
            except BaseException as e:  # handed to whoever waits
                self._set(_UNSET, e)
                return
            self._set(value, None)

    def then(self, callback):
        """A new Future resolving to callback(self) once self is done."""
        out = Future()
        if self._source is not None and not self.done():
            out._source = (self.done, lambda timeout: callback(_waited(self, timeout)))
            return out

        def run():
            try:
                out.set_result(callback(self))
            except BaseException as e:  # handed to whoever waits on `out`
                out.set_exception(e)

        with self._cond:
            if not self._resolved():
                self._callbacks.append(run)
                return out
        run()
        return out


def _waited(fut, timeout):
    fut.wait(timeout)
    return fut


def completed(value):
    """A Future that is already done with `value`."""
    fut = Future()
    fut.set_result(value)
    return fut


def from_work(work):
    """The Future of an async collective's Work handle (comm.allreduce_async(x) and friends): it
    resolves to what work.wait() returns."""
    fut = Future()
    fut._source = (work.is_completed, work.wait)
    return fut
