"""Optimizer and lr schedule from a config's `optim` section (distbp train and the Ray servers)."""
from distbp import optim


def optimizer_class(o):
    """-> (optimizer class, its keyword arguments) for the config's `optim` section: what
    build_optimizer and ZeroRedundancyOptimizer(params, cls, **kwargs) take."""
    if o["name"] == "sgd":
        return optim.SGD, dict(lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"],
                               weight_decay=o["weight_decay"])
    cls = optim.AdamW if o["name"] == "adamw" else optim.Adam
    return cls, dict(lr=o["lr"], betas=tuple(o["betas"]), weight_decay=o["weight_decay"])


def build_optimizer(o, model):
    """`model`: a Module (anything with .parameters()) or a list of parameters."""
    params = list(model.parameters()) if hasattr(model, "parameters") else list(model)
    cls, kwargs = optimizer_class(o)
    return cls(params, **kwargs)


def build_scheduler(o, optimizer, total_steps):
    """constant | cosine | step, each after `warmup_steps` of linear warm-up."""
    warmup = min(o["warmup_steps"], total_steps)
    if o["schedule"] == "cosine":
        return optim.lr_scheduler.WarmupCosine(optimizer, warmup, total_steps, o["min_lr"])

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        if o["schedule"] == "step":
            return o["gamma"] ** (step // o["step_size"])
        return 1.0

    return optim.lr_scheduler.LambdaLR(optimizer, factor)
