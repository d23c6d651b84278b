"""GRU with torch.nn.GRU's parameters, gate order and equations, unrolled over time with Tensor ops.

Per layer l: weight_ih_l{l} (3H, I), weight_hh_l{l} (3H, H), bias_ih_l{l} (3H,), bias_hh_l{l} (3H,),
rows stacked as [reset r | update z | new n]:
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
The input projection of all time steps is one matmul per layer; only the recurrent one is per step.
"""
import math

import numpy as np

from distbp.nn import functional as F
from distbp.nn import init
from distbp.nn.module import Module, Parameter
from distbp.tensor import Tensor, stack




class GRU(Module):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, dtype=None):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"GRU: num_layers={num_layers} must be >= 1")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        dtype = np.dtype(dtype or np.float32)
        H = hidden_size
        for layer in range(num_layers):
            i = input_size if layer == 0 else H
            setattr(self, f"weight_ih_l{layer}", Parameter(np.empty((3 * H, i), dtype=dtype)))
            setattr(self, f"weight_hh_l{layer}", Parameter(np.empty((3 * H, H), dtype=dtype)))
            if bias:
                setattr(self, f"bias_ih_l{layer}", Parameter(np.empty(3 * H, dtype=dtype)))
                setattr(self, f"bias_hh_l{layer}", Parameter(np.empty(3 * H, dtype=dtype)))
            else:
                self.register_parameter(f"bias_ih_l{layer}", None)
                self.register_parameter(f"bias_hh_l{layer}", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _layer(self, x, h, layer):
        """x (T, B, I), h (B, H) -> outputs (T, B, H), last h (B, H)."""
        H = self.hidden_size
        w_hh = getattr(self, f"weight_hh_l{layer}")
        b_hh = getattr(self, f"bias_hh_l{layer}")
        gi = F.linear(x, getattr(self, f"weight_ih_l{layer}"), getattr(self, f"bias_ih_l{layer}"))
        outs = []
        for t in range(x.shape[0]):
            g_i = gi[t]                           # (B, 3H)
            g_h = F.linear(h, w_hh, b_hh)         # (B, 3H)
            rz = F.sigmoid(g_i[:, :2 * H] + g_h[:, :2 * H])
            r, z = rz[:, :H], rz[:, H:]
            n = F.tanh(g_i[:, 2 * H:] + r * g_h[:, 2 * H:])
            h = n + z * (h - n)                   # == (1 - z) * n + z * h
            outs.append(h)
        return stack(outs), h

    def forward(self, input, hx=None):
        """input (T, B, I), or (B, T, I) if batch_first; hx (num_layers, B, H) or None (zeros).
        Returns output (T, B, H) / (B, T, H) and h_n (num_layers, B, H)."""
        if input.ndim != 3 or input.shape[-1] != self.input_size:
            order = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(f"GRU: expected input {order} with I={self.input_size}, got shape "
                             f"{tuple(input.shape)}")
        x = input.transpose(0, 1) if self.batch_first else input
        B = x.shape[1]
        want = (self.num_layers, B, self.hidden_size)
        if hx is None:
            hx = Tensor(np.zeros(want, dtype=x.data.dtype))
        elif tuple(hx.shape) != want:
            raise ValueError(f"GRU: expected hx of shape {want}, got {tuple(hx.shape)}")
        last = []
        for layer in range(self.num_layers):
            x, h = self._layer(x, hx[layer], layer)
            last.append(h)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, p=self.dropout, training=True)
        output = x.transpose(0, 1) if self.batch_first else x
        return output, stack(last)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s
