"""One helper that runs a distbp module and an equivalent torch module on the same input, with the
same weights (copied through state_dict), and compares outputs, input grads and parameter grads."""
import numpy as np
import torch

from distbp.tensor import Tensor


def copy_weights(ours, theirs):
    """Load our state_dict into the torch module (key for key) and make it float64."""
    theirs.double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return theirs


def compare(ours, theirs, *inputs, tol=1e-10, copy=True, out_index=None, int_inputs=()):
    """Forward both, backprop a fixed random projection of the output, compare everything.
    `out_index` picks an element when the module returns a tuple (GRU); inputs listed in
    `int_inputs` are integer ids and get no grad. Returns the two outputs."""
    ours.double()
    if copy:
        copy_weights(ours, theirs)
    xs = [Tensor(x.copy(), requires_grad=i not in int_inputs) for i, x in enumerate(inputs)]
    txs = [torch.tensor(x.copy(), requires_grad=i not in int_inputs) for i, x in enumerate(inputs)]
    y, ty = ours(*xs), theirs(*txs)
    outs = (y, ty)
    if isinstance(ty, tuple):
        pairs = list(zip(y, ty)) if out_index is None else [(y[out_index], ty[out_index])]
    else:
        pairs = [(y, ty)]
    rng = np.random.default_rng(7)
    loss, tloss = 0, 0
    for a, b in pairs:
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=tol, atol=tol,
                                   err_msg="forward output differs")
        w = rng.standard_normal(a.data.shape)
        loss = loss + (a * Tensor(w)).sum()
        tloss = tloss + (b * torch.tensor(w)).sum()
    loss.backward()
    tloss.backward()
    for i, (x, tx) in enumerate(zip(xs, txs)):
        if i not in int_inputs:
            np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=tol, atol=tol,
                                       err_msg=f"grad of input {i} differs")
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None, f"no grad for {name}"
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=f"grad of {name} differs")
    return outs
