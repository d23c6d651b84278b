"""Finite-difference gradient check in float64, like torch.autograd.gradcheck.

For a random fixed vector v, the analytic vector-Jacobian product v^T J (one backward pass) is
compared with central differences (f(x + eps) - f(x - eps)) / 2eps . v, element by element of
every input that requires grad. A random v catches a wrong Jacobian with probability one.
"""
import numpy as np

from distbp.autograd import no_grad


def _outputs(out):
    """fn may return a Tensor, or a tuple/namedtuple whose float Tensors are the outputs."""
    from distbp.tensor import Tensor
    items = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in items if isinstance(o, Tensor) and o.dtype.kind == "f"]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Return True if fn's analytic input grads match finite differences; raise otherwise.

    inputs: a Tensor or a tuple of Tensors/other args; Tensors with requires_grad must be float64.
    """
    from distbp.tensor import Tensor
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences "
                            f"need float64 inputs")
    outs = _outputs(fn(*inputs))
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(o.shape) for o in outs]

    def project(outputs):
        return float(np.sum([np.sum(o.data * v) for o, v in zip(_outputs(outputs), vs)]))

    for i in checked:
        inputs[i].grad = None
    loss = None
    for o, v in zip(outs, vs):
        if o.requires_grad:
            term = (o * Tensor(v)).sum()
            loss = term if loss is None else loss + term
    if loss is None:
        raise ValueError("gradcheck: no output of fn requires grad")
    loss.backward()

    for i in checked:
        x = inputs[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad
        numeric = np.zeros(x.shape)
        flat = x.data.reshape(-1)  # a view: perturb in place, restore after
        with no_grad():
            for j in range(flat.size):
                orig = flat[j]
                flat[j] = orig + eps
                plus = project(fn(*inputs))
                flat[j] = orig - eps
                minus = project(fn(*inputs))
                flat[j] = orig
                numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if (err > 0).any():
            j = np.unravel_index(np.argmax(err), x.shape)
            raise AssertionError(
                f"gradcheck: input {i} (shape {x.shape}) analytic grad {analytic[j]:.10g} vs "
                f"numeric {numeric[j]:.10g} at index {tuple(int(k) for k in j)} "
                f"(atol={atol}, rtol={rtol})")
    return True
