"""A small GPT-style character model, defined here, trained on Python's own documentation text.

    python examples/char_gpt.py --steps 200                               # one process
    distbp run --nproc-per-node 2 examples/char_gpt.py --steps 200
    mpiexec -n 2 python examples/char_gpt.py --steps 200
    distbp run --backend ray --nproc-per-node 2 examples/char_gpt.py --steps 200

The text is pydoc_data.topics (the help() pages shipped with CPython, ~0.8 MB). The model is
nanoGPT's shape: token + position embeddings, pre-norm blocks of causal self-attention and an MLP,
a final LayerNorm and a linear head. Rank 0 prints the losses and a sample at the end.
"""
import argparse
import math

import numpy as np

import distbp
import distbp.distributed as dist
import distbp.nn as nn
import distbp.nn.functional as F
from distbp.nn.parallel import DistributedDataParallel as DDP
from distbp.utils.data import DataLoader, Dataset
from distbp.utils.data.distributed import DistributedSampler

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--batch-size", type=int, default=16, help="per rank")
parser.add_argument("--block-size", type=int, default=64)
parser.add_argument("--n-embd", type=int, default=64)
parser.add_argument("--n-head", type=int, default=4)
parser.add_argument("--n-layer", type=int, default=2)
parser.add_argument("--lr", type=float, default=3e-3)
parser.add_argument("--eval-batches", type=int, default=8)
parser.add_argument("--sample-chars", type=int, default=200)
args = parser.parse_args()


class SelfAttention(nn.Module):
    """Multi-head causal self-attention: position t attends to positions <= t."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.shape
        h, d = self.n_head, C // self.n_head
        qkv = self.qkv(x).reshape(B, T, 3, h, d).permute(2, 0, 3, 1, 4)   # (3, B, h, T, d)
        q, k, v = qkv[0], qkv[1], qkv[2]                                  # (B, h, T, d)
        att = (q @ k.permute(0, 1, 3, 2)) * (1.0 / math.sqrt(d))         # (B, h, T, T)
        mask = np.triu(np.full((T, T), -np.inf, np.float32), k=1)        # hide the future
        att = F.softmax(att + mask, dim=-1)
        y = (att @ v).permute(0, 2, 1, 3).reshape(B, T, C)               # (B, T, C)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(n_embd), SelfAttention(n_embd, n_head)
        self.ln2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(),
                                 nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size, n_embd, n_head, n_layer):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, n_embd)
        self.pos = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f, self.head = nn.LayerNorm(n_embd), nn.Linear(n_embd, vocab_size)

    def forward(self, idx):                                              # idx (B, T) int64
        T = idx.shape[1]
        x = self.tok(idx) + self.pos(np.arange(T))                       # (B, T, C)
        return self.head(self.ln_f(self.blocks(x)))                      # (B, T, vocab)


class CharWindows(Dataset):
    """Sample i: the block_size characters from i * block_size, and the same shifted by one."""

    def __init__(self, ids, block_size):
        self.ids, self.block_size = ids, block_size

    def __len__(self):
        return (len(self.ids) - 1) // self.block_size

    def __getitem__(self, i):
        a = i * self.block_size
        return self.ids[a:a + self.block_size], self.ids[a + 1:a + 1 + self.block_size]


def load_text():
    from pydoc_data.topics import topics
    text = "\n".join(topics[k] for k in sorted(topics))
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    return np.array([index[c] for c in text], np.int64), chars


dist.init_process_group()
rank, world_size = dist.get_rank(), dist.get_world_size()
is_main = rank == 0

ids, chars = load_text()
split = int(0.9 * len(ids))
train_set, val_set = CharWindows(ids[:split], args.block_size), CharWindows(ids[split:],
                                                                             args.block_size)
sampler = DistributedSampler(train_set, shuffle=True, seed=0)
loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler, drop_last=True)
val_loader = DataLoader(val_set, batch_size=args.batch_size, drop_last=True,
                        sampler=DistributedSampler(val_set, shuffle=False))

distbp.manual_seed(0)
model = DDP(GPT(len(chars), args.block_size, args.n_embd, args.n_head, args.n_layer))
optimizer = distbp.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
if is_main:
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(ids)} characters, vocabulary {len(chars)}, {n_params} parameters, "
          f"{world_size} rank(s) x batch {args.batch_size}", flush=True)


def lm_loss(logits, targets):
    B, T, V = logits.shape
    return F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))


step, epoch = 0, 0
while step < args.steps:
    sampler.set_epoch(epoch)
    for x, y in loader:
        optimizer.zero_grad()
        loss = lm_loss(model(x), y)
        loss.backward()
        optimizer.step()
        step += 1
        if is_main and (step % 50 == 0 or step == 1):
            print(f"step {step}: train loss {loss.item():.4f}", flush=True)
        if step == args.steps:
            break
    epoch += 1

totals = np.zeros(2)                                                      # [loss sum, batches]
with distbp.no_grad():
    for i, (x, y) in enumerate(val_loader):
        if i == args.eval_batches:
            break
        totals += [lm_loss(model(x), y).item(), 1]
dist.all_reduce(totals)
if is_main:
    print(f"validation loss {totals[0] / totals[1]:.4f} ({totals[0] / totals[1] / math.log(2):.3f} "
          "bits per character)", flush=True)
    context = np.array([[chars.index(c) for c in "def "]], np.int64)
    rng = np.random.default_rng(0)
    with distbp.no_grad():
        for _ in range(args.sample_chars):
            logits = model.module(context[:, -args.block_size:]).data[0, -1]
            p = np.exp(logits - logits.max())
            context = np.concatenate([context, [[rng.choice(len(p), p=p / p.sum())]]], 1)
    print("sample:", repr("".join(chars[i] for i in context[0])), flush=True)

dist.destroy_process_group()
