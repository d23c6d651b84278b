"""`distbp config`: every config key with its default and its documentation, as YAML that can be
saved and edited (`distbp config > mine.yaml`), or the resolved config of a file with overrides.

    distbp config
    distbp config --config configs/mnist1d_cnn.yaml --set train.steps=30

The documentation is the comment beside each key in distbp/train/config.py's DEFAULTS, so the
defaults and their explanations live in one place.
"""
import argparse
import inspect
import re

import yaml

from distbp.train import config as C

_SECTION = re.compile(r'^\s*"(\w+)":\s*\{')
_KEY = re.compile(r'^\s*"(\w+)":\s*[^#]*?(?:#\s*(.*))?$')


def key_docs():
    """{"section.key": comment} read from the DEFAULTS literal's source."""
    source = inspect.getsource(C)
    block = source[source.index("DEFAULTS = {"):]
    block = block[:block.index("\n}\n")]
    docs, section = {}, None
    for line in block.splitlines()[1:]:
        m = _SECTION.match(line)
        if m:
            section = m.group(1)
            continue
        m = _KEY.match(line)
        if m and section:
            docs[f"{section}.{m.group(1)}"] = (m.group(2) or "").strip()
    return docs


def describe(key):
    """The key's comment, plus the values it accepts when config.py restricts them."""
    doc = key_docs().get(key, "")
    if key in C.CHOICES and not all(c in doc for c in C.CHOICES[key]):
        doc = (doc + "; " if doc else "") + "one of " + " | ".join(C.CHOICES[key])
    if key in C.MINIMUM:
        doc = (doc + "; " if doc else "") + f">= {C.MINIMUM[key]}"
    return doc


def render(cfg, with_docs=True):
    """YAML of a nested config, each key followed by `# doc`."""
    lines = []
    for section, values in cfg.items():
        lines.append(f"{section}:")
        for key, value in values.items():
            text = f"  {key}: {_yaml_value(value)}"
            doc = describe(f"{section}.{key}") if with_docs else ""
            lines.append(f"{text:<40} # {doc}" if doc else text)
    return "\n".join(lines) + "\n"


def _yaml_value(value):
    return yaml.safe_dump([value], default_flow_style=True, width=1000).strip()[1:-1]


def main(argv):
    p = argparse.ArgumentParser(prog="distbp config", description="Print every config key with "
                                "its default and documentation, or a config file resolved.")
    p.add_argument("--config", help="a YAML experiment file to resolve against the defaults")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key, as for distbp train (repeatable)")
    args = p.parse_args(argv)
    print(render(C.load_config(args.config, args.set)), end="")
    return 0
