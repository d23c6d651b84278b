"""One worker's training run, top to bottom: config -> data shard -> forward -> loss -> backward ->
reducer -> optimizer step -> metrics/checkpoint. Every rank runs `train(cfg, out_dir, comm)`; rank 0
alone prints and writes.

The loss of a step is the sum of per-sample (per-token) losses divided by the size of the *global*
batch, so all-reducing gradients with a plain sum gives the gradient of the global-batch mean on
every rank, whatever the number of workers (world-size invariance).

Your own model, data and loss keep checkpoints, exact resume, metrics, evaluation and --trace:

    Trainer(cfg, "runs/mine", comm, model=Net(), train_set=(x, y), test_set=(x_test, y_test),
            loss_fn=nn.MSELoss(reduction="sum")).fit()
model: an nn.Module, built the same way on every rank (rank 0's parameters are broadcast anyway).
train_set / test_set: a distbp.data Dataset, an (x, y) pair of arrays or a map-style dataset;
without test_set nothing is evaluated. loss_fn(output, target) -> the sum over the batch, or
per-sample losses (reduction="sum" or "none"; see distbp/train/tasks.py); cfg["train"]["loss"]
still picks the metrics. Everything else comes from cfg (load_config), as for `distbp train`.
"""
import io
import json
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

import distbp
from distbp import runtime
from distbp.data import DistributedLoader
from distbp.comm.flight import Stragglers
from distbp.parallel import auto_compression
from distbp.parallel.compression import BucketCompression, bucket_compression_hook, start_iter
from distbp.parallel.ddp import DistributedDataParallel, check_same_parameters
from distbp.parallel.update import AllReduce, NonFiniteGradient, Sharded, decide  # noqa: F401
from distbp.parallel.zero import ZeroRedundancyOptimizer
from distbp.train import checkpoint as ckpt
from distbp.train.build import build_parts
from distbp.train.optim import build_optimizer, build_scheduler, optimizer_class
from distbp.train.progress import Progress
from distbp.train.trace import Tracer
from distbp.logs import get_logger, line_logger                      # daily: logging, records, export
from distbp.safetensors import save_file as save_safetensors
from distbp.train.records import Recorder, provenance

logger = get_logger(__name__)

EVAL_BATCH = 256
WARMUP_STEPS = 5  # steps left out of samples_per_second (first row-group reads, first allocations)


def limit_threads(cfg, world_size):
    """All workers together use the machine's cores, not more."""
    return runtime.limit_threads(cfg["train"]["threads"], world_size)


class Trainer:
    def __init__(self, cfg, out_dir, comm, resume=False, trace=False, log=None, quiet=False, *,
                 model=None, train_set=None, test_set=None, loss_fn=None):
        self.cfg, self.comm = cfg, comm
        self.quiet = quiet
        self.out = Path(out_dir)
        self.rank, self.world = comm.rank, comm.size
        self.is_main = self.rank == 0
        self.log = (log or line_logger(logger)) if self.is_main else (lambda *a, **k: None)
        t = cfg["train"]
        self.dtype = np.dtype(t["dtype"])
        self.threads = limit_threads(cfg, self.world)
        if t["keep_heap"]:
            runtime.keep_heap()
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)

        # data, model, loss: built and checked as the launcher's preflight built them (build.py);
        # each rank opens the Parquet footers and later reads only its own row groups
        parts = build_parts(cfg, self.dtype, model, train_set, test_set, loss_fn)
        self.train_set, self.test_set, self.meta = parts.train_set, parts.test_set, parts.meta
        self.task, self.loss, self.custom_loss = parts.task, parts.loss, parts.custom_loss
        self.steps, self.model = parts.steps, parts.model

        # data parallelism: ranks checked and synchronised, gradients reduced by the DDP reducer;
        # with the optimizer sharded (ZeRO-1) each rank updates 1/N of the parameters
        d = cfg["dist"]
        self.sharded = bool(d["shard_optimizer"]) and self.world > 1 and d["backend"] in ("local", "mpi")
        if trace:
            comm.barrier()
        self.tracer = Tracer(self.rank) if trace else None
        # the loss is normalised by the global batch: a plain sum of the gradients
        self.ddp = DistributedDataParallel(self.model, comm=comm, bucket_cap_mb=d["bucket_mb"],
                                           tracer=self.tracer, grad_reduction="sum")
        if self.sharded:
            cls, kwargs = optimizer_class(cfg["optim"])
            self.optimizer = ZeroRedundancyOptimizer(self.model.parameters(), cls, **kwargs)
            self.sync = Sharded(self.ddp, self.optimizer)
        else:
            self.optimizer = build_optimizer(cfg["optim"], self.model)
            self.sync = AllReduce(self.ddp, self.optimizer)
        self.scheduler = build_scheduler(cfg["optim"], self.optimizer, self.steps)
        self.start_step = 0
        self.skipped_steps = 0
        self._saved_hook = None
        if resume:
            self._resume()      # every rank reads the same checkpoint
        self.compression = self._compression(self._saved_hook)
        self.loader = DistributedLoader(self.train_set, t["global_batch_size"], self.rank,
                                        self.world, seed=t["seed"], augment=parts.augment,
                                        start_step=self.start_step)
        self.metrics_file = self.out / "metrics.jsonl"
        # per step, when each rank issued its first collective: who keeps the others waiting
        self.stragglers = Stragglers(comm) if self.world > 1 else None
        self.recorder = Recorder(self.out, t["tensorboard"], resume) if self.is_main else None  # daily

    # -- one optimizer step ---------------------------------------------------------------------------
    def loss_sum(self, batch):
        """Sum of per-sample (per-element) losses of a local (micro-)batch."""
        x = distbp.from_numpy(batch.x)
        with distbp.random.per_sample(self.cfg["train"]["seed"], batch.step, batch.indices):
            out = self.ddp(x)
        if self.custom_loss:                   # the user's loss sees the output and y as they are
            return self.loss(out, batch.y)
        return self.loss(*self.task.align(out, batch.y))

    def train_step(self, step, batch):
        """-> (loss of the global batch, global gradient norm or nan if the step was skipped)."""
        if self.tracer:
            self.tracer.step = step
        loss = self.compute_gradients(batch)
        return loss, self.apply_update(step)

    def compute_gradients(self, batch):
        """Forward and backward over the micro-batches; gradients reduced on the last one only.
        Returns this rank's share of the global-batch loss."""
        tr = self.tracer
        accumulate = self.cfg["train"]["accumulate_steps"]
        per_sample = int(np.prod(batch.y.shape[1:])) if batch.y.ndim > 1 else 1
        global_count = self.cfg["train"]["global_batch_size"] * per_sample
        loss_total = 0.0
        micro = batch.split(accumulate)
        self.model.train()
        self.optimizer.zero_grad()
        for k, mb in enumerate(micro):
            sync = self.ddp.no_sync() if k < len(micro) - 1 else nullcontext()
            with sync:
                t0 = time.perf_counter()
                loss = self.loss_sum(mb)
                loss = loss / global_count
                t1 = time.perf_counter()
                loss.backward()
                t2 = time.perf_counter()
                if tr:
                    tr.complete("forward", t0, t1)
                    tr.complete("backward", t1, t2)
            loss_total += float(loss.item())
        return loss_total

    def apply_update(self, step):
        """Check, clip and apply the reduced gradients (distbp/parallel/update.py). Returns the
        global gradient norm (nan when the step was skipped)."""
        t0 = time.perf_counter()
        sq, first_bad = self.sync.grad_sq_sum(step)
        norm, scale = decide(step, sq, first_bad, self.cfg["train"], self.log, self.skipped_steps)
        self.sync.apply(scale)
        if scale is None:
            self.skipped_steps += 1
            return float("nan")
        self.scheduler.step()
        if self.tracer:
            self.tracer.complete("optimizer step", t0, time.perf_counter())
        return norm

    # -- the loop -----------------------------------------------------------------------------------
    def fit(self):
        t = self.cfg["train"]
        progress = Progress(self.steps, enabled=self.is_main and not self.quiet)
        step = self.start_step
        it = iter(self.loader)
        train_time, samples, last_eval = 0.0, 0, None
        loss_sum_logged, logged = 0.0, 0
        final_loss = float("nan")
        while step < self.steps:
            t0 = time.perf_counter()
            batch = next(it)
            if self.tracer:
                self.tracer.step = step
                self.tracer.complete("data", t0, time.perf_counter(), cat="data")
            if self.stragglers:
                self.stragglers.step()           # the step's first collective stamps the arrival
            log_layers = (step + 1) % t["log_every"] == 0
            before = self._snapshot() if log_layers else None      # rank 0 only
            loss, grad_norm = self.train_step(step, batch)
            if log_layers:
                self.sync.gather_gradients()     # per-layer stats need whole gradients
            step += 1
            if step == self.start_step + 1:      # this start trained a step (restart.py reads it)
                self._write_metrics({"kind": "start", "step": self.start_step,
                                     "world_size": self.world})
            short_run = self.steps - self.start_step <= 2 * WARMUP_STEPS
            if step - self.start_step > WARMUP_STEPS or short_run:
                train_time += time.perf_counter() - t0     # warm-up steps are not timed
                samples += t["global_batch_size"]
            loss_sum_logged += loss
            logged += 1
            if step % t["log_every"] == 0 or step == self.steps:
                # the logged loss is the global-batch mean: every rank contributed its share
                loss_arr = self.comm.allreduce(np.array([loss_sum_logged / logged]))
                final_loss = float(loss_arr[0])
                sps = samples / train_time if train_time else 0.0
                record = {"kind": "train", "step": step, "loss": final_loss,
                          "lr": float(self.scheduler.get_last_lr()[0]),
                          "grad_norm": grad_norm, "samples_per_second": sps,
                          "skipped_steps": self.skipped_steps}
                if before is not None:
                    record["layers"] = self._layer_stats(before)
                if self.stragglers:                 # collective: every rank logs the same steps
                    record.update(self.stragglers.summary())
                self._write_metrics(record)
                progress.update(step, loss=final_loss, samples_s=round(sps))
                loss_sum_logged, logged = 0.0, 0
            if t["eval_every"] and step % t["eval_every"] == 0 and step < self.steps:
                last_eval = self.evaluate(step)
            every = self.cfg["checkpoint"]["every_steps"]
            if every and step % every == 0 and step < self.steps:
                self.save_checkpoint(step)
        progress.close()
        last_eval = self.evaluate(step)
        self.save_checkpoint(step)
        summary = self._summary(step, final_loss, last_eval, samples, train_time)
        if self.tracer:
            self.tracer.save(self.out / "trace")
        return summary

    # -- evaluation -----------------------------------------------------------------------------------
    def evaluate(self, step):
        """Each rank evaluates a contiguous shard of the test set; the sufficient statistics are
        summed across ranks, so every rank ends with the same metrics. The loss is the training
        loss per target element, computed in float64; the metrics are the task's (tasks.py)."""
        if self.test_set is None:
            return None
        self.model.eval()
        stats = self.task.new_stats()
        with distbp.no_grad():
            for x, y in self.test_set.shard_batches(self.rank, self.world, EVAL_BATCH):
                if not len(y):
                    continue
                out = self.model(distbp.from_numpy(x))
                aligned, ya = self.task.align(out, y)
                if self.custom_loss:
                    loss = self.loss(distbp.from_numpy(out.data.astype(np.float64)), y)
                else:
                    aligned = distbp.from_numpy(aligned.data.astype(np.float64))
                    loss = self.loss(aligned, ya)
                stats["loss"] += [float(loss.item()), np.size(y)]
                self.task.accumulate(stats, aligned.data.astype(np.float64), ya)
        for key in sorted(stats):                   # the same order on every rank
            stats[key] = self.comm.allreduce(stats[key])
        loss_sum, count = stats["loss"]
        record = {"kind": "eval", "step": step, "loss": float(loss_sum / max(count, 1)),
                  **self.task.metrics(stats)}
        self._write_metrics(record)
        self.model.train()
        return record

    # -- gradient flow (after the reduction, so every rank agrees) ---------------------------------------
    def _snapshot(self):
        return {n: p.data.copy() for n, p in self.model.named_parameters()} if self.is_main else None

    def _layer_stats(self, before):
        if before is None:
            return None
        out = {}
        for name, p in self.model.named_parameters():
            if p.grad is None:
                continue
            pn = float(np.linalg.norm(before[name]))
            upd = float(np.linalg.norm(p.data - before[name]))
            out[name] = {"grad_norm": float(np.linalg.norm(p.grad)), "param_norm": pn,
                         "update_ratio": upd / pn if pn else 0.0}
        return out

    # -- files (rank 0) -----------------------------------------------------------------------------
    def _write_metrics(self, record):
        if self.is_main:
            self.recorder.write(record)     # daily: + time, elapsed; TensorBoard (records.py)

    def model_state(self):
        state = {n: p.data for n, p in self.model.named_parameters()}
        state.update({n: (b.data if hasattr(b, "data") else b)
                      for n, b in self.model.named_buffers()})
        return state

    def save_checkpoint(self, step):
        optim_state = self.optimizer.state_dict()     # a collective when the optimizer is sharded
        hook_state = self.compression.state_dict() if self.compression else None   # collective
        if not self.is_main:
            return
        meta = {"config": self.cfg, "data_position": {"step": step},
                "rng": distbp.random.default_generator().bit_generator.state,
                "scheduler": self.scheduler.state_dict(),
                "skipped_steps": self.skipped_steps, "world_size": self.world}
        ckpt.save_checkpoint(self.out / "checkpoints", step, self.model_state(),
                             optim_state, meta, keep=self.cfg["checkpoint"]["keep"],
                             comm_hook=hook_state)

    def _resume(self):
        """Every rank loads the newest intact checkpoint (the run directory is shared, as with DDP)."""
        path, (meta, model_sd, optim_sd) = ckpt.latest_intact(self.out / "checkpoints", self.log)
        ckpt.check_compatible(self.model_state(), model_sd, path)
        self.model.load_state_dict(model_sd)
        self.optimizer.load_state_dict(optim_sd)
        self.scheduler.step(self.start_step_of(meta))   # the schedule follows this run's config
        distbp.random.default_generator().bit_generator.state = meta["rng"]
        self.start_step = self.start_step_of(meta)
        self.skipped_steps = meta.get("skipped_steps", 0)
        self._saved_hook = meta.get("comm_hook")
        self.log(f"resumed from {path.name} at step {self.start_step}")

    def _compression(self, saved):
        """dist.compression: the hook every gradient bucket is reduced by (parallel/compression.py;
        composes with the sharded optimizer), registered before the first backward. A resumed run
        takes the checkpoint's state when it was made with the same setting: PowerSGD continues
        with the same bits and auto keeps its choices without measuring again."""
        spec = self.cfg["dist"]["compression"]
        if saved is not None and saved["spec"] != spec:
            self.log(f"the checkpoint was made with dist.compression={saved['spec']}; this run "
                     f"uses {spec}: the checkpoint's compression state is not used")
            saved = None
        if spec == "none":
            return None
        reducer = self.ddp.reducer
        sizes = [b.buffer.size for b in reducer.buckets]
        if saved is not None:
            state = BucketCompression.from_state_dict(self.comm, sizes, saved, reducer.shard)
        else:
            record, choices = None, [spec] * len(sizes)
            if spec == "auto":
                record = auto_compression.decide(reducer, self.comm)     # collective
                choices = [b["choice"] for b in record["buckets"]]
            start = start_iter(self.steps, self.cfg["optim"]["warmup_steps"])
            state = BucketCompression(self.comm, sizes, choices, reducer.shard, start, spec, record)
        if state.decision is not None:
            self.log(auto_compression.describe(state.decision))
        elif state.powersgd:
            self.log(f"dist.compression={spec}: plain all-reduce for the first "
                     f"{state.start_powerSGD_iter} steps, then PowerSGD")
        self.ddp.register_comm_hook(state, bucket_compression_hook)
        return state

    @staticmethod
    def start_step_of(meta):
        return int(meta["data_position"]["step"])

    def _summary(self, step, final_loss, last_eval, samples, train_time):
        summary = {"steps": step, "final_loss": final_loss, "world_size": self.world,
                   "backend": self.cfg["dist"]["backend"],
                   "samples_per_second": samples / train_time if train_time else 0.0,
                   "skipped_steps": self.skipped_steps, "threads_per_worker": self.threads,
                   "comm_seconds": self.sync.stats["comm_seconds"],
                   "exposed_comm_seconds": self.sync.stats["exposed_seconds"]}
        for k, v in (last_eval or {}).items():
            if k not in ("kind", "step"):
                summary["test_" + k if k != "loss" else "test_loss"] = v
        if self.compression is not None:    # collective: a hook must leave every rank the same bits
            summary["compression"] = dict(self.compression.summary(), parameters_sha256=(
                check_same_parameters(self.model, self.comm, "parameters after training")))
        summary["provenance"] = provenance(self.comm, self.cfg["dist"]["backend"])  # daily (collective)
        if self.is_main:
            ckpt.atomic_write(self.out / "summary.json", json.dumps(summary, indent=1).encode())
            buf = io.BytesIO()
            np.savez(buf, **self.model_state())
            ckpt.atomic_write(self.out / "model.npz", buf.getvalue())
            save_safetensors(self.model_state(), self.out / "model.safetensors")     # daily
        return summary


def train(cfg, out_dir, comm, resume=False, trace=False):
    return Trainer(cfg, out_dir, comm, resume=resume, trace=trace).fit()
