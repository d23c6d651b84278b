"""Models the shipped configs train, built by name from the config's `model` section.

    build_model(cfg["model"], meta) -> nn.Module
meta: what the data set says about itself: `shape` (sample shape, e.g. (1, 40) or (1, 8, 8)),
`num_classes`, and for text `vocab_size` and `block_size`.
"""
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
    if name not in BUILDERS:
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(BUILDERS)}")
    if (name in LANGUAGE_MODELS) != ("vocab_size" in meta):
        kind = "text" if "vocab_size" in meta else "classification"
        raise UsageError(f"model {name!r} does not fit a {kind} data set")
    return BUILDERS[name](mcfg, meta)
