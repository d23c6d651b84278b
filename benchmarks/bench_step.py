"""One training step (zero_grad, forward, cross-entropy, backward, SGD momentum step) in distbp,
in PyTorch CPU and, for the MLP, in hand-written numpy. Prints a markdown table.

    python benchmarks/bench_step.py                      # 1 thread, 100 reps per contender
    python benchmarks/bench_step.py --threads 2 --reps 200 --out benchmarks/results/step.md
    python benchmarks/bench_step.py --cases gpt,resnet --threads 1,2 --reps 20   # both counts, one run

Models (float32, random data, lr 0.01, momentum 0.9):
  mlp     784-512-512-10, ReLU                              batch 128, and batch 8
  cnn     conv 1->32 3x3, ReLU, maxpool 2, conv 32->64 3x3, ReLU, maxpool 2, linear 1600->10;
          input 1x28x28, batch 128
  gpt     GPT-style character model: vocab 65, context 64, 4 pre-norm blocks of width 160 with
          4 heads (causal F.scaled_dot_product_attention) and a 4x GELU MLP; 1.3M parameters;
          batch 8 sequences (512 tokens), next-token cross-entropy
  resnet  residual CNN with batch norm on 3x32x32: conv 3->32 + BN + ReLU, three BasicBlocks
          (32, 64 stride 2, 128 stride 2; 1x1 conv + BN shortcuts), global average pool,
          linear 128->10; 0.7M parameters; batch 16
All contenders run the same thread count: torch.set_num_threads(n) and threadpoolctl limits numpy's
BLAS to n. The contenders of one case are interleaved (each repetition runs every contender once,
in a rotating order) so background load hits them alike; the time is the median over repetitions.

Memory is measured in a fresh subprocess per contender: "step RSS" is the peak resident set during
3 training steps minus the resident set just before them (Linux VmHWM, reset through
/proc/self/clear_refs after the model, optimizer and data exist), i.e. the working memory of a step:
activations, gradients, optimizer state, allocator caches. For numpy and
distbp, "traced peak" is tracemalloc's peak of live numpy/python allocations during one step
(torch's allocator is invisible to tracemalloc, so it has no such number).
"""
import argparse
import json
import platform
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LR, MOMENTUM = 0.01, 0.9


GPT = dict(vocab=65, block=64, width=160, heads=4, layers=4)


def data(model, batch, seed=0):
    rng = np.random.default_rng(seed)
    if model == "gpt":  # token ids (B, T) and the next tokens as targets
        ids = rng.integers(0, GPT["vocab"], size=(batch, GPT["block"] + 1))
        return ids[:, :-1], ids[:, 1:]
    shape = {"mlp": (batch, 784), "cnn": (batch, 1, 28, 28), "resnet": (batch, 3, 32, 32)}[model]
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, batch)


# ---------------------------------------------------------------- contenders: build -> step()

def make_gpt(nn, F, as_tensor):
    """nanoGPT's model, written once against the torch API (distbp.nn or torch.nn)."""
    c = GPT

    class Block(nn.Module):
        def __init__(self, width, heads):
            super().__init__()
            self.heads = heads
            self.ln_1 = nn.LayerNorm(width)
            self.c_attn = nn.Linear(width, 3 * width)
            self.c_proj = nn.Linear(width, width)
            self.ln_2 = nn.LayerNorm(width)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

        def attn(self, x):
            B, T, C = x.shape
            qkv = self.c_attn(x)                                             # (B, T, 3C)
            q, k, v = (qkv[:, :, i * C:(i + 1) * C].reshape(B, T, self.heads, C // self.heads)
                       .transpose(1, 2) for i in range(3))                   # (B, nh, T, hd)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)      # (B, nh, T, hd)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class CharGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(c["vocab"], c["width"])
            self.wpe = nn.Embedding(c["block"], c["width"])
            self.blocks = nn.ModuleList([Block(c["width"], c["heads"]) for _ in range(c["layers"])])
            self.ln_f = nn.LayerNorm(c["width"])
            self.head = nn.Linear(c["width"], c["vocab"], bias=False)
            self.pos = as_tensor(np.arange(c["block"]))

        def forward(self, idx):                                              # (B, T)
            x = self.wte(idx) + self.wpe(self.pos)
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln_f(x))                                   # (B, T, vocab)
    return CharGPT()


def make_resnet(nn, F):
    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                              nn.BatchNorm2d(cout))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    return nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                         BasicBlock(32, 32, 1), BasicBlock(32, 64, 2), BasicBlock(64, 128, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


def make_net(nn, model, F=None, as_tensor=None):
    """The same architecture from distbp.nn or torch.nn: the two share names and signatures."""
    if model == "gpt":
        return make_gpt(nn, F, as_tensor)
    if model == "resnet":
        return make_resnet(nn, F)
    if model == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 5 * 5, 10))


def build_distbp(model, batch):
    import distbp
    from distbp import nn, optim
    from distbp.nn import functional as F
    distbp.manual_seed(0)
    net = make_net(nn, model, F, distbp.tensor)
    opt = optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    x, y = data(model, batch)
    x = distbp.Tensor(x)

    def step():
        opt.zero_grad()
        out = net(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss
    return step


def build_torch(model, batch):
    import torch
    torch.manual_seed(0)
    nn = torch.nn
    net = make_net(nn, model, torch.nn.functional, torch.from_numpy)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    x, y = data(model, batch)
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        out = net(x)
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss
    return step


def build_numpy(model, batch):
    """The MLP written out by hand: the floor a numpy framework can hope to reach."""
    if model != "mlp":
        raise ValueError("the hand-written numpy contender only implements the MLP")
    rng = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    Ws, bs = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(fan_in)
        Ws.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        bs.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    params = Ws + bs
    bufs = [None] * len(params)
    x, y = data(model, batch)
    rows = np.arange(batch)

    def step():
        # forward
        a1 = x @ Ws[0].T
        a1 += bs[0]
        h1 = np.maximum(a1, 0)
        a2 = h1 @ Ws[1].T
        a2 += bs[1]
        h2 = np.maximum(a2, 0)
        z = h2 @ Ws[2].T
        z += bs[2]
        # softmax cross-entropy, mean over the batch
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        loss = -np.log(p[rows, y]).mean()
        # backward
        dz = p
        dz[rows, y] -= 1
        dz /= batch
        g = [None] * 6
        g[2], g[5] = dz.T @ h2, dz.sum(0)
        dh2 = dz @ Ws[2]
        dh2 *= a2 > 0
        g[1], g[4] = dh2.T @ h1, dh2.sum(0)
        dh1 = dh2 @ Ws[1]
        dh1 *= a1 > 0
        g[0], g[3] = dh1.T @ x, dh1.sum(0)
        # SGD with momentum (torch's rule: the first buffer is the gradient itself)
        for i, (param, grad) in enumerate(zip(params, g)):
            if bufs[i] is None:
                bufs[i] = grad.copy()
            else:
                bufs[i] *= MOMENTUM
                bufs[i] += grad
            param -= LR * bufs[i]
        return loss
    return step


BUILDERS = {"distbp": build_distbp, "torch": build_torch, "numpy": build_numpy}

CASES = {  # name: (label, model, batch, contenders)
    "mlp": ("MLP 784-512-512-10, batch 128", "mlp", 128, ["distbp", "torch", "numpy"]),
    "cnn": ("CNN 2 conv + 2 pool + linear, batch 128", "cnn", 128, ["distbp", "torch"]),
    "mlp8": ("MLP 784-512-512-10, batch 8", "mlp", 8, ["distbp", "torch", "numpy"]),
    "gpt": ("char GPT 4x160, T 64, batch 8", "gpt", 8, ["distbp", "torch"]),
    "resnet": ("ResNet-BN 3x32x32, batch 16", "resnet", 16, ["distbp", "torch"]),
}


def limit_threads(n):
    """Same thread count everywhere: torch's intra-op pool and numpy's BLAS."""
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController
    if _CONTROLLER is None:  # inspecting the loaded libraries once; limit() is then cheap
        _CONTROLLER = ThreadpoolController()
    _CONTROLLER.limit(limits=n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


_CONTROLLER = None


# ---------------------------------------------------------------- timing

def time_case(model, batch, contenders, threads, reps, warmup):
    """Median wall and CPU (process_time) milliseconds per step of each contender at `threads`.

    Every repetition runs every contender once, in a rotating order, so background load hits
    them alike. Thread counts are not mixed within a block: an OpenMP pool keeps spinning for a
    while after a 2-thread step and would steal the core from the next 1-thread step. On a
    shared host the CPU time is the steadier number: it does not count the time the process
    waited for a core (with 2 threads it sums both)."""
    limit_threads(threads)
    steps = {c: BUILDERS[c](model, batch) for c in contenders}
    for c in contenders:
        for _ in range(warmup):
            steps[c]()
    wall = {c: [] for c in contenders}
    cpu = {c: [] for c in contenders}
    for rep in range(reps):
        k = rep % len(contenders)
        for c in contenders[k:] + contenders[:k]:  # rotate who goes first
            t0, c0 = time.perf_counter(), time.process_time()
            steps[c]()
            wall[c].append(time.perf_counter() - t0)
            cpu[c].append(time.process_time() - c0)
    return ({c: float(np.median(v)) * 1e3 for c, v in wall.items()},
            {c: float(np.median(v)) * 1e3 for c, v in cpu.items()})


# ---------------------------------------------------------------- memory (one subprocess each)

def _proc_status_kb(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def memory_child(framework, model, batch, threads):
    if framework == "torch":
        import torch  # noqa: F401  (imported before limiting threads so its pool is limited too)
    limit_threads(threads)
    step = BUILDERS[framework](model, batch)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _proc_status_kb("VmRSS")
    for _ in range(3):
        step()
    rss_kb = _proc_status_kb("VmHWM") - before
    traced = None
    if framework != "torch":
        tracemalloc.start()
        step()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(json.dumps({"rss_mb": rss_kb / 1024, "traced_mb": None if traced is None else traced / 2**20}))


def measure_memory(framework, model, batch, threads):
    out = subprocess.run([sys.executable, __file__, "--memory-child", framework, model, str(batch),
                          "--threads", str(threads)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report

def versions():
    import torch
    return f"numpy {np.__version__}, torch {torch.__version__}, python {platform.python_version()}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1", help="thread count, or a comma list run interleaved "
                    "in one process (e.g. 1,2)")
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {list(CASES)}")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-contender memory runs")
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    ap.add_argument("--memory-child", nargs=3, metavar=("FRAMEWORK", "MODEL", "BATCH"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        fw, model, batch = args.memory_child
        memory_child(fw, model, int(batch), int(args.threads))
        return 0

    import torch  # noqa: F401
    threads = [int(t) for t in str(args.threads).split(",")]
    lines = [f"threads: {args.threads} (torch.set_num_threads + threadpoolctl), reps: {args.reps} "
             f"interleaved contenders per thread count, median ms/step; {versions()}", "",
             "| case | threads | contender | ms/step | distbp / this | CPU ms/step | "
             "distbp / this (CPU) | step RSS MB | traced peak MB |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    unknown = [c for c in args.cases.split(",") if c not in CASES]
    if unknown:
        ap.error(f"unknown case {unknown[0]!r}; choose from {', '.join(CASES)}")
    for name in args.cases.split(","):
        label, model, batch, contenders = CASES[name]
        for t in threads:
            ms, cpu = time_case(model, batch, contenders, t, args.reps, args.warmup)
            for c in contenders:
                mem = {"rss_mb": float("nan"), "traced_mb": None} if args.no_memory else \
                    measure_memory(c, model, batch, t)
                ratio = "" if c == "distbp" else f"{ms['distbp'] / ms[c]:.2f}x"
                cratio = "" if c == "distbp" else f"{cpu['distbp'] / cpu[c]:.2f}x"
                traced = "n/a" if mem["traced_mb"] is None else f"{mem['traced_mb']:.1f}"
                lines.append(f"| {label} | {t} | {c} | {ms[c]:.2f} | {ratio} | {cpu[c]:.2f} | "
                             f"{cratio} | {mem['rss_mb']:.1f} | {traced} |")
                print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
