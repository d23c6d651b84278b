"""A PyTorch training script ports by changing its imports: the same source text runs once with
torch and once with distbp bound to the names `torch`, `nn`, `F`, `optim`, from the same initial
weights, and gives the same losses (float64), the same checkpoint round trip and the same
evaluation. The script is written the way the PyTorch examples are (MNIST-style CNN, an LSTM
tagger), using the surface this suite checks elsewhere."""
import textwrap

import numpy as np
import pytest
import torch as real_torch

import distbp

SCRIPT = textwrap.dedent('''
    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, 1)
            self.bn = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 6, 3, 1, 1, 1, 2)       # padding=1, dilation=1, groups=2
            self.dropout = nn.Dropout(0.0)
            self.fc = nn.Linear(6 * 3 * 3, 5)

        def forward(self, x):
            x = F.relu(self.bn(self.conv1(x)))
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(self.dropout(x), 1)
            return F.log_softmax(self.fc(x), dim=1)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4, padding_idx=0)
            self.lstm = nn.LSTM(4, 5, num_layers=2, batch_first=True, bidirectional=True)
            self.head = nn.Sequential(nn.LayerNorm(10), nn.Linear(10, 3))

        def forward(self, ids):
            out, (h, c) = self.lstm(self.embed(ids))
            return self.head(out)

    def train(model, batches, loss_fn, steps, path):
        model = model.to("cpu").double()
        opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05, amsgrad=True)
        sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
        losses = []
        model.train()
        for step in range(steps):
            x, y = batches[step % len(batches)]
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
        ckpt = torch.load(path, weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        model.eval()
        with torch.no_grad():
            x, y = batches[0]
            out = model(x)
            correct = (out.argmax(dim=-1) == y).sum().item()
        return losses, correct
''')


def run_script(lib, init, batches, tmp_path):
    names = {"torch": lib, "nn": lib.nn, "F": lib.nn.functional, "optim": lib.optim}
    exec(compile(SCRIPT, "<ported script>", "exec"), names)
    conv, tagger = names["ConvNet"](), names["Tagger"]()
    for model, sd in ((conv, init["conv"]), (tagger, init["tagger"])):
        model.load_state_dict({k: lib.tensor(v) for k, v in sd.items()})
    t = lambda a: lib.tensor(a)  # noqa: E731
    img = [(t(x), t(y)) for x, y in batches["img"]]
    seq = [(t(x), t(y)) for x, y in batches["seq"]]

    def tag_loss(out, y):
        return names["F"].cross_entropy(out.reshape(-1, 3), y.reshape(-1), label_smoothing=0.1)

    a = names["train"](conv, img, names["F"].nll_loss, 6, tmp_path / f"{lib.__name__}_conv.pt")
    b = names["train"](tagger, seq, tag_loss, 6, tmp_path / f"{lib.__name__}_tagger.pt")
    return a, b


def test_same_script_same_numbers_in_torch_and_distbp(tmp_path):
    rng = np.random.default_rng(0)
    batches = {"img": [(rng.standard_normal((4, 1, 8, 8)), rng.integers(0, 5, 4)) for _ in range(2)],
               "seq": [(rng.integers(0, 10, (3, 6)), rng.integers(0, 3, (3, 6))) for _ in range(2)]}
    names = {"torch": real_torch, "nn": real_torch.nn, "F": real_torch.nn.functional,
             "optim": real_torch.optim}
    exec(compile(SCRIPT, "<torch script>", "exec"), names)
    init = {"conv": {k: v.double().numpy() for k, v in names["ConvNet"]().state_dict().items()},
            "tagger": {k: v.double().numpy() for k, v in names["Tagger"]().state_dict().items()}}
    theirs = run_script(real_torch, init, batches, tmp_path)
    ours = run_script(distbp, init, batches, tmp_path)
    for (ol, oc), (tl, tc) in zip(ours, theirs):
        np.testing.assert_allclose(ol, tl, rtol=1e-9)
        assert oc == tc
    assert ours[0][0][-1] < ours[0][0][0]  # it trains


@pytest.mark.parametrize("line", ["import torch", "import torch.nn as nn",
                                  "import torch.nn.functional as F", "from torch import optim"])
def test_import_lines_have_distbp_equivalents(line):
    exec(line.replace("torch", "distbp"), {})
