"""Optimizer and learning-rate schedule from the config's `optim` section: distbp/optim/from_config.py
(the Ray parameter servers build theirs with it too)."""
from distbp.optim.from_config import build_optimizer, build_scheduler, optimizer_class

__all__ = ["build_optimizer", "build_scheduler", "optimizer_class"]
