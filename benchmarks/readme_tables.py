"""Regenerate the README's tables from benchmarks/results/, so no figure there is typed by hand.

    python benchmarks/readme_tables.py            # rewrite the tables in README.md
    python benchmarks/readme_tables.py --check    # exit 1 if README.md is out of date (CI, tests)

A results file marks the table the README shows with one comment line right above it:

    <!-- readme-table: step | machine: 2 cores (AMD EPYC VM), 24 GB | date: 2026-11-28 | command: python benchmarks/bench_step.py --reps 60 -->
    | case | contender | ms/step | ... |

and README.md holds the place for it between

    <!-- readme-table: step -->  ...  <!-- /readme-table -->

TABLES below says which columns and rows of each source table the README keeps. The caption
names the command, the machine and the date, from the marker.
"""
import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (results file, columns kept (None: all), {column: values a row must have} or None)
TABLES = {
    "configs": ("configs.md", None, None),
    "step": ("step.md", ["case", "contender", "ms/step", "distbp / this", "step RSS MB"],
             {"threads": ["1"]}),
    "training": ("training.md",
                 ["model", "implementation", "samples/s (median)", "2 vs 1 worker",
                  "distbp / torch"],
                 {"workers": ["2"], "scaling": ["weak"], "implementation": [
                     "ceiling: 2 trainings, a barrier per step, no exchange", "distbp local",
                     "distbp mpi", "PyTorch DDP gloo"]}),
    "allreduce": ("allreduce.md", None, {"": [
        "local, symmetric buffer (`comm.empty`), N=2", "local, numpy array, N=2",
        "mpi ring (default: shared memory), N=2", "mpi ring over MPI messages, N=2",
        "local, symmetric buffer, N=4 (4 processes on 2 cores)"]}),
}

MARKER = re.compile(r"^<!-- readme-table: (.*?) -->\s*$")
BLOCK = re.compile(r"(<!-- readme-table: (\w+) -->\n)(.*?)(<!-- /readme-table -->)", re.S)


def parse_marker(text):
    """'step | machine: ... | date: ...' -> ('step', {'machine': ..., 'date': ...})."""
    name, *fields = [part.strip() for part in text.split(" | ")]
    meta = {}
    for field in fields:
        key, sep, value = field.partition(": ")
        if not sep:
            raise ValueError(f"readme-table marker {text!r}: expected 'key: value', got {field!r}")
        meta[key] = value
    return name, meta


def find_table(path, name):
    """(header, alignment cells, rows, meta) of the table marked `name` in a results file."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if m and parse_marker(m.group(1))[0] == name:
            meta = parse_marker(m.group(1))[1]
            table = []
            for row in lines[i + 1:]:
                if not row.startswith("|"):
                    break
                table.append(row)
            if len(table) < 3:
                raise ValueError(f"{path}: the readme-table {name!r} marker is not followed by a "
                                 "markdown table")
            header = _cells(table[0])
            return header, _cells(table[1]), [_cells(r) for r in table[2:]], meta
    raise ValueError(f"{path}: no '<!-- readme-table: {name} | ... -->' marker")


def _cells(row):
    return [c.strip() for c in row.strip().strip("|").split("|")]


def select(header, rows, columns=None, where=None):
    """Keep the named columns (in that order) of the rows whose cells match `where`; rows are
    lists of cells like the header (the alignment row is one too)."""
    for col in list(columns or []) + list(where or {}):
        if col not in header:
            raise ValueError(f"column {col!r} not in the table's header {header}")
    keep = [r for r in rows if all(r[header.index(c)] in v for c, v in (where or {}).items())]
    idx = [header.index(c) for c in columns] if columns else list(range(len(header)))
    return [header[i] for i in idx], [[r[i] for i in idx] for r in keep]


def render(name, results_dir):
    source, columns, where = TABLES[name]
    path = Path(results_dir) / source
    header, align, rows, meta = find_table(path, name)
    _, [align] = select(header, [align], columns)
    header, rows = select(header, rows, columns, where)
    missing = [k for k in ("machine", "date", "command") if k not in meta]
    if missing:
        raise ValueError(f"{path}: the readme-table {name!r} marker lacks {', '.join(missing)}")
    rel = path.resolve().relative_to(ROOT).as_posix() if path.resolve().is_relative_to(ROOT) \
        else path.name
    note = f"; {meta['note']}" if meta.get("note") else ""
    lines = [f"`{meta['command']}` on {meta['machine']}, {meta['date']}{note} ([details]({rel})):", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def update(readme_text, results_dir):
    """README text with every readme-table block regenerated."""
    def block(m):
        name = m.group(2)
        if name not in TABLES:
            raise ValueError(f"README.md: unknown readme-table {name!r}; known: {', '.join(TABLES)}")
        return m.group(1) + render(name, results_dir) + m.group(4)
    return BLOCK.sub(block, readme_text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--readme", default=ROOT / "README.md", type=Path)
    p.add_argument("--results", default=ROOT / "benchmarks" / "results", type=Path)
    p.add_argument("--check", action="store_true", help="exit 1 if the README is out of date")
    args = p.parse_args(argv)
    old = args.readme.read_text(encoding="utf-8")
    new = update(old, args.results)
    if args.check:
        if new != old:
            print(f"{args.readme} is out of date: run python benchmarks/readme_tables.py",
                  file=sys.stderr)
            return 1
        return 0
    if new != old:
        args.readme.write_text(new, encoding="utf-8")
    print(f"{args.readme}: {len(BLOCK.findall(new))} tables from {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
