"""Learning-rate schedulers with torch.optim.lr_scheduler's names and lr sequences.

Each scheduler computes the lr in closed form from `last_epoch` and the group's `initial_lr`
(set once, by the first scheduler attached to the optimizer, as torch does). Construction applies
the epoch-0 lr; every `step()` advances one epoch. `state_dict()` is plain numbers and lists.
"""
import math
from bisect import bisect_right


class LRScheduler:
    _chained = False  # set by ChainedScheduler: apply this schedule's step-to-step ratio instead

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param_groups[{i}] has no 'initial_lr': resuming with "
                               f"last_epoch={last_epoch} needs a loaded optimizer state")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self.step()

    def lr_at(self, epoch, base_lr):
        """The lr of one group at `epoch`, given its initial lr."""
        raise NotImplementedError

    def _lr(self, i, epoch, base_lr):
        return self.lr_at(epoch, base_lr)

    def step(self, epoch=None):
        prev = self.last_epoch
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        for i, (group, base_lr) in enumerate(zip(self.optimizer.param_groups, self.base_lrs)):
            target = self._lr(i, self.last_epoch, base_lr)
            if self._chained:  # torch's recursive form: lr * f(t) / f(t - 1), with f(-1) = base_lr
                before = self._lr(i, prev, base_lr) if prev >= 0 else base_lr
                target = group["lr"] * target / before if before != 0 else target
            group["lr"] = target
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)

    def get_lr(self):
        return [self._lr(i, self.last_epoch, b) for i, b in enumerate(self.base_lrs)]

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer" and not callable(v)}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


_LRScheduler = LRScheduler  # torch's old name


class StepLR(LRScheduler):
    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** bisect_right(self.milestones, epoch)


class CosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch); one lambda for all groups or one per group.
    The lambdas are not part of state_dict (they are code, not data)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"LambdaLR got {len(lr_lambda)} lr_lambdas for {n} param groups")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def _lr(self, i, epoch, base_lr):
        return base_lr * self.lr_lambdas[i](epoch)

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


class LinearLR(LRScheduler):
    """Scales the lr linearly from start_factor to end_factor over total_iters epochs."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not (0 < start_factor <= 1) or not (0 <= end_factor <= 1):
            raise ValueError(f"LinearLR: start_factor={start_factor} must be in (0, 1] and "
                             f"end_factor={end_factor} in [0, 1]")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        frac = min(self.total_iters, epoch) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class ExponentialLR(LRScheduler):
    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** epoch


class ConstantLR(LRScheduler):
    """lr * factor until total_iters, then lr."""

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if not 0 <= factor <= 1:
            raise ValueError(f"ConstantLR: factor={factor} must be in [0, 1]")
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return base_lr * (self.factor if epoch < self.total_iters else 1.0)


class PolynomialLR(LRScheduler):
    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return base_lr * (1.0 - min(self.total_iters, epoch) / self.total_iters) ** self.power


class MultiplicativeLR(LRScheduler):
    """lr *= lr_lambda(epoch) at every step after the first (recursive by nature)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(lambdas) != n:
            raise ValueError(f"MultiplicativeLR got {len(lambdas)} lr_lambdas for {n} param groups")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def step(self, epoch=None):
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self.last_epoch > 0:
            for group, fn in zip(self.optimizer.param_groups, self.lr_lambdas):
                group["lr"] = group["lr"] * fn(self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


class _Composite:
    """state_dict of a scheduler made of others (ChainedScheduler, SequentialLR): its own fields
    and each child's state, not the optimizer or the child objects."""

    def state_dict(self):
        sd = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        for s, sd in zip(self._schedulers, state_dict.pop("_schedulers")):
            s.load_state_dict(sd)
        self.__dict__.update(state_dict)


class ChainedScheduler(_Composite, LRScheduler):
    """Steps several schedulers together; their factors multiply (torch's recursive form)."""

    def __init__(self, schedulers, optimizer=None):
        if not schedulers:
            raise ValueError("ChainedScheduler expects at least one scheduler")
        optimizer = optimizer or schedulers[0].optimizer
        for i, s in enumerate(schedulers):
            if s.optimizer is not optimizer:
                raise ValueError(f"ChainedScheduler: scheduler {i} ({type(s).__name__}) belongs to "
                                 "another optimizer")
        self.optimizer, self._schedulers = optimizer, list(schedulers)
        # redo the construction-time steps so they compose, as torch's recursive forms do
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for s in self._schedulers:
            s._chained = True
            for i, (group, base) in enumerate(zip(optimizer.param_groups, s.base_lrs)):
                if not isinstance(s, MultiplicativeLR):
                    group["lr"] *= s._lr(i, s.last_epoch, base) / base
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self):
        for s in self._schedulers:
            s.step()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]



class SequentialLR(_Composite, LRScheduler):
    """Runs schedulers[i] from milestones[i-1] on; each restarts at its own epoch 0."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR needs len(schedulers) - 1 milestones, got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        for i, s in enumerate(schedulers):
            if s.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {i} ({type(s).__name__}) belongs to "
                                 "another optimizer")
        self.optimizer = optimizer
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        scheduler = self._schedulers[bisect_right(self._milestones, self.last_epoch)]
        scheduler.step(0)
        self._last_lr = scheduler.get_last_lr()

    def step(self):
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler.step(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()



class WarmupCosine(LRScheduler):
    """Linear warm-up to the initial lr over `warmup_steps`, then cosine decay to `min_lr` at
    `total_steps` (held there afterwards). Step s < warmup_steps gets lr * (s + 1) / warmup_steps."""

    def __init__(self, optimizer, warmup_steps, total_steps, min_lr=0.0, last_epoch=-1):
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"WarmupCosine: need 0 <= warmup_steps ({warmup_steps}) <= "
                             f"total_steps ({total_steps})")
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        if epoch < self.warmup_steps:
            return base_lr * (epoch + 1) / self.warmup_steps
        if epoch >= self.total_steps:
            return self.min_lr
        frac = (epoch - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * frac)) / 2


# the cyclic and metric-driven schedulers live next door; `lr_scheduler.OneCycleLR` works as in torch
from distbp.optim.lr_cycles import (CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR,  # noqa: E402,F401
                                    ReduceLROnPlateau)
