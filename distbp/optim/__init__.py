"""distbp.optim: optimizers and learning-rate schedulers with torch.optim's names and update rules."""
from distbp.optim import lr_scheduler
from distbp.optim.adafactor import Adafactor, Muon
from distbp.optim.adagrad import Adadelta, Adagrad, RMSprop
from distbp.optim.adam import Adam, AdamW
from distbp.optim.adam_variants import Adamax, NAdam, RAdam
from distbp.optim.lbfgs import LBFGS
from distbp.optim.optimizer import Optimizer
from distbp.optim.rprop import ASGD, Rprop
from distbp.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "RMSprop", "Adamax",
           "NAdam", "RAdam", "Rprop", "ASGD", "Adafactor", "Muon", "LBFGS",
           "lr_scheduler"]
