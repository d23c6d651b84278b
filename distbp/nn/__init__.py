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
from distbp.nn.parameter import Buffer, UninitializedBuffer, UninitializedParameter
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
    "Buffer", "UninitializedParameter", "UninitializedBuffer",
]

from distbp.nn.activation import (CELU, ELU, GLU, SELU, Hardshrink, Hardsigmoid, Hardswish,  # noqa: E402
                                  Hardtanh, LeakyReLU, LogSigmoid, Mish, PReLU, ReLU6, RReLU, SiLU,
                                  Softmax2d, Softmin, Softplus, Softshrink, Softsign, Tanhshrink,
                                  Threshold)
from distbp.nn.attention import MultiheadAttention  # noqa: E402
from distbp.nn.conv import ConvTranspose1d, ConvTranspose2d  # noqa: E402
from distbp.nn.distance import CosineSimilarity, PairwiseDistance  # noqa: E402
from distbp.nn.dropout import AlphaDropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout  # noqa: E402
from distbp.nn.fold import Fold, Unfold  # noqa: E402
from distbp.nn.linear import Bilinear  # noqa: E402
from distbp.nn.loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, GaussianNLLLoss,  # noqa: E402
                            HingeEmbeddingLoss, HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss,
                            MultiLabelSoftMarginLoss, MultiMarginLoss, NLLLoss, PoissonNLLLoss,
                            SmoothL1Loss, SoftMarginLoss, TripletMarginLoss)
from distbp.nn.loss import MultiLabelMarginLoss, TripletMarginWithDistanceLoss  # noqa: E402
from distbp.nn.norm import (BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d,  # noqa: E402
                            LocalResponseNorm, RMSNorm)
from distbp.nn.padding import (CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d,  # noqa: E402
                               ReflectionPad1d, ReflectionPad2d, ReplicationPad1d, ReplicationPad2d,
                               ZeroPad1d, ZeroPad2d)
from distbp.nn.padding import (CircularPad3d, ConstantPad3d, ReflectionPad3d, ReplicationPad3d,  # noqa: E402
                               ZeroPad3d)
from distbp.nn.pooling import AdaptiveMaxPool1d, AdaptiveMaxPool2d, LPPool1d, LPPool2d  # noqa: E402
from distbp.nn.pooling import AdaptiveAvgPool3d  # noqa: E402
from distbp.nn.sparse import EmbeddingBag  # noqa: E402
from distbp.nn.transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer,  # noqa: E402
                                   TransformerEncoder, TransformerEncoderLayer)
from distbp.nn.upsampling import (ChannelShuffle, PixelShuffle, PixelUnshuffle, Upsample,  # noqa: E402
                                  UpsamplingBilinear2d, UpsamplingNearest2d)

__all__ += [  # nn.functional-family modules (func helper)
    "CELU", "ELU", "GLU", "SELU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh", "LeakyReLU",
    "LogSigmoid", "Mish", "PReLU", "ReLU6", "RReLU", "SiLU", "Softmax2d", "Softmin", "Softplus",
    "Softshrink", "Softsign", "Tanhshrink", "Threshold", "MultiheadAttention", "ConvTranspose1d",
    "ConvTranspose2d", "CosineSimilarity", "PairwiseDistance", "AlphaDropout", "Dropout1d",
    "Dropout2d", "Dropout3d", "FeatureAlphaDropout", "Fold", "Unfold", "Bilinear", "BCELoss",
    "BCEWithLogitsLoss", "CosineEmbeddingLoss", "GaussianNLLLoss", "HingeEmbeddingLoss",
    "HuberLoss", "KLDivLoss", "L1Loss", "MarginRankingLoss", "MultiLabelSoftMarginLoss",
    "MultiMarginLoss", "NLLLoss", "PoissonNLLLoss", "SmoothL1Loss", "SoftMarginLoss",
    "TripletMarginLoss", "BatchNorm3d", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
    "InstanceNorm3d", "LocalResponseNorm", "RMSNorm", "CircularPad1d", "CircularPad2d",
    "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d", "ReplicationPad1d",
    "ReplicationPad2d", "ZeroPad1d", "ZeroPad2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "LPPool1d", "LPPool2d", "EmbeddingBag", "Transformer", "TransformerDecoder",
    "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer", "ChannelShuffle",
    "PixelShuffle", "PixelUnshuffle", "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d",
    "MultiLabelMarginLoss", "TripletMarginWithDistanceLoss", "CircularPad3d",
    "ConstantPad3d", "ReflectionPad3d", "ReplicationPad3d", "ZeroPad3d", "AdaptiveAvgPool3d",
]

from distbp.nn.lazy import (LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyConv1d,  # noqa: E402
                            LazyConv2d, LazyConvTranspose1d, LazyConvTranspose2d, LazyInstanceNorm1d,
                            LazyInstanceNorm2d, LazyInstanceNorm3d, LazyLinear)

__all__ += ["LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConvTranspose1d", "LazyConvTranspose2d",
            "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d",
            "LazyInstanceNorm2d", "LazyInstanceNorm3d"]

from distbp.nn.adaptive import AdaptiveLogSoftmaxWithLoss  # noqa: E402
from distbp.nn.conv import Conv3d, ConvTranspose3d  # noqa: E402
from distbp.nn.lazy import LazyConv3d, LazyConvTranspose3d  # noqa: E402
from distbp.nn.loss import CTCLoss, LinearCrossEntropyLoss  # noqa: E402
from distbp.nn.functional.linear_ce import LinearCrossEntropyOptions  # noqa: E402
from distbp.nn.norm import SyncBatchNorm  # noqa: E402
from distbp.nn.pooling import (AdaptiveMaxPool3d, AvgPool3d, LPPool3d, MaxPool3d, MaxUnpool1d,  # noqa: E402
                               MaxUnpool2d, MaxUnpool3d)
from distbp.nn.pooling import FractionalMaxPool2d, FractionalMaxPool3d  # noqa: E402

__all__ += ["Conv3d", "ConvTranspose3d", "LazyConv3d", "LazyConvTranspose3d", "SyncBatchNorm",  # cover
            "AdaptiveMaxPool3d", "AvgPool3d", "LPPool3d", "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d",
            "MaxUnpool3d", "CTCLoss", "FractionalMaxPool2d", "FractionalMaxPool3d",
            "AdaptiveLogSoftmaxWithLoss", "LinearCrossEntropyLoss", "LinearCrossEntropyOptions"]
