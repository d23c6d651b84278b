"""distbp.nn: modules with torch.nn's names, one family per file. This file only re-exports."""
from distbp.nn import functional, init, utils
from distbp.nn.activation import GELU, Flatten, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from distbp.nn.attention import CausalSelfAttention
from distbp.nn.conv import Conv1d, Conv2d
from distbp.nn.dropout import Dropout
from distbp.nn.linear import Identity, Linear
from distbp.nn.loss import CrossEntropyLoss, MSELoss
from distbp.nn.module import Module, ModuleDict, ModuleList, Parameter, Sequential
from distbp.nn.container import ParameterDict, ParameterList
from distbp.nn.flatten import Unflatten
from distbp.nn.norm import BatchNorm1d, BatchNorm2d, LayerNorm
from distbp.nn.pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d,
                               MaxPool1d, MaxPool2d)
from distbp.nn.residual import BasicBlock
from distbp.nn.rnn import GRU
from distbp.nn.rnn import LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from distbp.nn.sparse import Embedding

__all__ = [
    "functional", "init", "utils",
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict",
    "Linear", "Identity", "Conv1d", "Conv2d",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout", "Embedding",
    "ReLU", "GELU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "Flatten",
    "GRU", "CausalSelfAttention", "BasicBlock", "CrossEntropyLoss", "MSELoss",
    "ParameterList", "ParameterDict", "Unflatten",
    "RNNBase", "RNN", "LSTM", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell",
]
