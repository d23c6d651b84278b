"""RNN, LSTM, GRU and their cells with torch.nn's signatures, parameter names, gate order and
equations, unrolled over time with Tensor ops (the engine's iterative backward handles long
sequences).

Per layer l and direction (suffix '' or '_reverse'): weight_ih_l{l} (G*H, I), weight_hh_l{l}
(G*H, H), bias_ih_l{l} (G*H,), bias_hh_l{l} (G*H,), G = 1 (RNN), 4 (LSTM: i f g o), 3 (GRU: r z n):
    RNN   h' = tanh|relu(W_ih x + b_ih + W_hh h + b_hh)
    LSTM  i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (W_ih x + b_ih + W_hh h + b_hh);
          c' = f * c + i * g;  h' = o * tanh(c')
    GRU   r, z = sigmoid(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z})
          n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h' = (1 - z) * n + z * h
The input projection of all time steps is one matmul per layer and direction; only the recurrent
one runs per step.
"""
import math

import numpy as np

from distbp import dtypes
from distbp.nn import functional as F
from distbp.nn import init
from distbp.nn.module import Module, Parameter
from distbp.tensor import Tensor, cat, stack

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _rnn_step(mode):
    def step(gi, h, w_hh, b_hh):
        pre = gi + F.linear(h, w_hh, b_hh)
        return pre.tanh() if mode == "RNN_TANH" else pre.relu()
    return step


def _lstm_step(gi, state, w_hh, b_hh):
    h, c = state
    gates = gi + F.linear(h, w_hh, b_hh)          # (B, 4H)
    H = h.shape[-1]
    ifo = gates[..., :2 * H].sigmoid(), gates[..., 3 * H:].sigmoid()
    i, f = ifo[0][..., :H], ifo[0][..., H:]
    g = gates[..., 2 * H:3 * H].tanh()
    c = f * c + i * g
    return ifo[1] * c.tanh(), c


def _gru_step(gi, h, w_hh, b_hh):
    H = h.shape[-1]
    gh = F.linear(h, w_hh, b_hh)                  # (B, 3H)
    rz = (gi[..., :2 * H] + gh[..., :2 * H]).sigmoid()
    r, z = rz[..., :H], rz[..., H:]
    n = (gi[..., 2 * H:] + r * gh[..., 2 * H:]).tanh()
    return n + z * (h - n)                        # == (1 - z) * n + z * h


def _step_fn(mode):
    return {"LSTM": _lstm_step, "GRU": _gru_step}.get(mode) or _rnn_step(mode)


class RNNBase(Module):
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        dtypes.check_device(device)
        name = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(mode, mode)
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size={proj_size} (LSTM projections) is not "
                                      "supported yet; use proj_size=0")
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers={num_layers} must be >= 1")
        if not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout={dropout} must be in [0, 1]")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        dtype = dtypes.as_dtype(dtype)
        G, H, D = _GATES[mode], hidden_size, 2 if bidirectional else 1
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[:D]:
                i = input_size if layer == 0 else H * D
                shapes = [("weight_ih", (G * H, i)), ("weight_hh", (G * H, H))]
                if bias:
                    shapes += [("bias_ih", (G * H,)), ("bias_hh", (G * H,))]
                for kind, shape in shapes:  # torch's registration order, so state_dicts line up
                    setattr(self, f"{kind}_l{layer}{suffix}", Parameter(np.empty(shape, dtype=dtype)))
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, layer, suffix):
        get = lambda kind: self._parameters.get(f"{kind}_l{layer}{suffix}")  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _run_direction(self, x, state, layer, suffix):
        """x (T, B, I), state h (B, H) (LSTM: (h, c)) -> outputs (T, B, H), last state."""
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, suffix)
        gi = F.linear(x, w_ih, b_ih)                 # (T, B, G*H): all steps in one matmul
        steps = range(x.shape[0] - 1, -1, -1) if suffix else range(x.shape[0])
        step, outs = _step_fn(self.mode), {}
        for t in steps:
            state = step(gi[t], state, w_hh, b_hh)
            outs[t] = state[0] if self.mode == "LSTM" else state
        return stack([outs[t] for t in range(x.shape[0])]), state

    def _check_input(self, input):
        name = type(self).__name__
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            order = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(f"{name}: expected input {order} or (T, I) with I={self.input_size}, "
                             f"got shape {tuple(input.shape)}")

    def _zeros(self, B, like):
        D = 2 if self.bidirectional else 1
        return Tensor(np.zeros((self.num_layers * D, B, self.hidden_size), dtype=like.data.dtype))

    def forward(self, input, hx=None):
        """input (T, B, I) ((B, T, I) if batch_first, or unbatched (T, I)); hx (L*D, B, H) or None
        (zeros), for LSTM a pair (h_0, c_0). Returns output (T, B, D*H) and h_n (L*D, B, H)
        (LSTM: (h_n, c_n)), shaped like the input."""
        self._check_input(input)
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        B, lstm = x.shape[1], self.mode == "LSTM"
        states = [self._zeros(B, x)] * (2 if lstm else 1) if hx is None else \
            (list(hx) if lstm else [hx])
        if not batched and hx is not None:
            states = [s.unsqueeze(1) for s in states]
        want = tuple(self._zeros(B, x).shape)
        for s in states:
            if tuple(s.shape) != want:
                raise ValueError(f"{type(self).__name__}: expected hidden state of shape {want}, "
                                 f"got {tuple(s.shape)}")
        D = 2 if self.bidirectional else 1
        last = [[] for _ in states]
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(("", "_reverse")[:D]):
                k = layer * D + d
                init_state = (states[0][k], states[1][k]) if lstm else states[0][k]
                out, final = self._run_direction(x, init_state, layer, suffix)
                outs.append(out)
                for j, f in enumerate(final if lstm else (final,)):
                    last[j].append(f)
            x = outs[0] if D == 1 else cat(outs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, p=self.dropout, training=True)
        finals = [stack(s) for s in last]
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if not batched:
            x, finals = x.squeeze(1), [f.squeeze(1) for f in finals]
        return x, (tuple(finals) if lstm else finals[0])

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}, use 'tanh' or 'relu'")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


# ---------------------------------------------------------------- cells: one time step

class RNNCellBase(Module):
    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        dtypes.check_device(device)
        dtype = dtypes.as_dtype(dtype)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        G = num_chunks * hidden_size
        self.weight_ih = Parameter(np.empty((G, input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((G, hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(np.empty(G, dtype=dtype))
            self.bias_hh = Parameter(np.empty(G, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def _prepare(self, input, hx, n_states):
        name = type(self).__name__
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input (B, {self.input_size}) or ({self.input_size},), "
                             f"got shape {tuple(input.shape)}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            zero = Tensor(np.zeros((x.shape[0], self.hidden_size), dtype=x.data.dtype))
            hx = (zero,) * n_states
        else:
            hx = tuple(hx) if n_states == 2 else (hx,)
            hx = hx if batched else tuple(h.unsqueeze(0) for h in hx)
        return x, hx, batched

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}, use 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, hx, 1)
        step = _rnn_step("RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU")
        h = step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        x, state, batched = self._prepare(input, hx, 2)
        h, c = _lstm_step(F.linear(x, self.weight_ih, self.bias_ih), state, self.weight_hh,
                          self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, hx, 1)
        h = _gru_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)
