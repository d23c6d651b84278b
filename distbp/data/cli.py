"""`distbp data`: prepare built-in datasets and inspect Parquet datasets.

    distbp data list
    distbp data prepare mnist1d --out data/mnist1d [--seed 42]
    distbp data info data/mnist1d
"""
import argparse
from pathlib import Path

from distbp.data.builtins import BUILTINS, prepare
from distbp.data.parquet import open_parquet, read_meta, resolve_files


def _parser():
    p = argparse.ArgumentParser(prog="distbp data", description="prepare and inspect datasets")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the built-in datasets")
    prep = sub.add_parser("prepare", help="write a built-in dataset as Parquet")
    prep.add_argument("name", help=f"one of {', '.join(BUILTINS)}")
    prep.add_argument("--out", required=True,
                      help="directory to create (must not hold other files)")
    prep.add_argument("--seed", type=int, default=None,
                      help="generation seed (default per dataset)")
    info = sub.add_parser("info", help="rows, row groups, columns and splits of a dataset")
    info.add_argument("path",
                      help="a dataset directory, a directory of .parquet files, or one file")
    return p


def _describe_files(files):
    """Lines: per file, rows / row groups / columns, from the footers only."""
    lines = []
    for file in files:
        reader = open_parquet(file)
        md = reader.metadata
        cols = ", ".join(f"{f.name}: {f.type}" for f in reader.schema_arrow)
        lines.append(f"    {file.name}: {md.num_rows} rows in {md.num_row_groups} row groups; "
                     f"{cols}")
    return lines


def info(path):
    path = Path(path)
    meta = read_meta(path) if path.is_dir() else None
    if meta is None:
        files = resolve_files(path)
        rows = sum(open_parquet(f).metadata.num_rows for f in files)
        return "\n".join([f"{path}: {rows} rows in {len(files)} files"] + _describe_files(files))
    head = {k: v for k, v in meta.items() if k not in ("splits", "vocab", "format", "version")}
    lines = [f"{path}: distbp dataset " + ", ".join(f"{k}={v}" for k, v in head.items())]
    if "vocab" in meta:
        lines.append(f"  vocab ({len(meta['vocab'])}): {''.join(meta['vocab'])!r}")
    for split in meta.get("splits", {}):
        lines.append(f"  split {split}:")
        lines.extend(_describe_files(resolve_files(path, split)))
    return "\n".join(lines)


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name, (_, seed, description) in BUILTINS.items():
            print(f"{name:<10} {description} (default seed {seed})")
    elif args.command == "prepare":
        out = prepare(args.name, args.out, seed=args.seed)
        print(info(out))
    elif args.command == "info":
        print(info(args.path))
    return 0
