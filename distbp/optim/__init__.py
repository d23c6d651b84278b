"""distbp.optim: optimizers and learning-rate schedulers with torch.optim's names and update rules."""
from distbp.optim import lr_scheduler
from distbp.optim.adam import Adam, AdamW
from distbp.optim.optimizer import Optimizer
from distbp.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
