"""BasicBlock, torchvision ResNet's two-conv residual block, in 1-D or 2-D.

    out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
conv1 is 3x3 with `stride`; shortcut is identity, or a 1x1 conv (stride) + BN named `downsample`
when the stride or the channel count changes. Names match torchvision so state_dicts copy across.
"""
from distbp.nn import functional as F
from distbp.nn.conv import Conv1d, Conv2d
from distbp.nn.module import Module, Sequential
from distbp.nn.norm import BatchNorm1d, BatchNorm2d


class BasicBlock(Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, dims=2, dtype=None):
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"BasicBlock: dims={dims} must be 1 or 2")
        Conv, BN = (Conv1d, BatchNorm1d) if dims == 1 else (Conv2d, BatchNorm2d)
        self.conv1 = Conv(in_planes, planes, 3, stride=stride, padding=1, bias=False, dtype=dtype)
        self.bn1 = BN(planes, dtype=dtype)
        self.conv2 = Conv(planes, planes, 3, stride=1, padding=1, bias=False, dtype=dtype)
        self.bn2 = BN(planes, dtype=dtype)
        if stride != 1 or in_planes != planes:
            self.downsample = Sequential(
                Conv(in_planes, planes, 1, stride=stride, bias=False, dtype=dtype), BN(planes, dtype=dtype))
        else:
            self.downsample = None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)
