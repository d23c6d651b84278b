"""Models built from the config's `model` section: the built-ins the shipped configs train, or your
own through an import string.

    build_model(cfg["model"], meta) -> nn.Module
meta: what the data set says about itself (Dataset.describe()): `shape` (sample shape, e.g. (1, 40)
or (1, 8, 8)), `num_outputs` (the width of the model's output: classes, or target values for a
regression or multi-label loss), and for text `vocab_size` and `block_size`.

    model: {name: "mypkg.models:make_model", kwargs: {hidden: 64}}   ->  make_model(hidden=64)
The callable (a function or an nn.Module class) is imported with the current directory on sys.path
(as `python -m` would) and must return an nn.Module; it gets model.kwargs only, not meta.
"""
import importlib
import os
import sys

from distbp import nn
from distbp.errors import UsageError
from distbp.models.charlm import AttentionLM, GRULM
from distbp.models.convnets import CNN1d, CNN2d, ResNet1d
from distbp.models.mlp import MLP, DeepMLP

BUILDERS = {
    "mlp": MLP.from_config,
    "deep_mlp": DeepMLP.from_config,
    "cnn1d": CNN1d.from_config,
    "cnn2d": CNN2d.from_config,
    "resnet1d": ResNet1d.from_config,
    "gru_lm": GRULM.from_config,
    "attn_lm": AttentionLM.from_config,
}

LANGUAGE_MODELS = {"gru_lm", "attn_lm"}


def build_model(mcfg, meta):
    name = mcfg["name"]
    if ":" in name:
        return build_imported(name, mcfg.get("kwargs") or {})
    if name not in BUILDERS:
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(BUILDERS)} or give an "
                         f"import string 'package.module:make_model'")
    if (name in LANGUAGE_MODELS) != (meta.get("task") == "lm"):
        kind = {"lm": "text", "regression": "regression"}.get(meta.get("task"), "classification")
        raise UsageError(f"model.name={name!r} does not fit a {kind} data set")
    if "num_outputs" not in meta:       # a describe() of an older data set
        meta = {**meta, "num_outputs": meta["num_classes"]}
    return BUILDERS[name](mcfg, meta)


def import_callable(spec, key="model.name"):
    """'package.module:attr.attr' -> the object, with the current directory importable."""
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise UsageError(f"{key}={spec!r}: cannot import {module_name!r} ({e}); is it on "
                         f"PYTHONPATH or in the current directory?") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{key}={spec!r}: {obj.__name__ if hasattr(obj, '__name__') else obj}"
                             f" has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{key}={spec!r} is a {type(obj).__name__}, not a callable")
    return obj


def build_imported(spec, kwargs):
    make = import_callable(spec)
    try:
        model = make(**kwargs)
    except TypeError as e:                     # wrong or missing keyword arguments
        raise UsageError(f"model.name={spec!r} called with model.kwargs {kwargs}: {e}") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"model.name={spec!r} returned a {type(model).__name__}, not an "
                         f"nn.Module")
    return model
