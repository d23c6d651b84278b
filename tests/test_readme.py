"""The README's code works when copied: every python block runs (and docs/design.md's), and the
Quickstart comes first with exactly the two shell commands CI runs; the README stays a front door."""
import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def run_python_blocks(text, name):
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, name
    out = io.StringIO()
    for block in blocks:
        with contextlib.redirect_stdout(out):
            exec(compile(block, name, "exec"), {})
    return out.getvalue()


def test_python_blocks_run():
    out = run_python_blocks(README, "README.md")
    assert "-24.0" in out.split()     # w.grad of the five-line example


def test_design_doc_python_blocks_run():
    run_python_blocks((ROOT / "docs" / "design.md").read_text(), "docs/design.md")


def test_quickstart_has_two_one_line_shell_commands():
    assert re.findall(r"^## .*", README, re.M)[0] == "## Quickstart"
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick, re.S)
    assert len(blocks) == 2
    assert all(len(b.strip().splitlines()) == 1 for b in blocks)
    assert "distbp train --config configs/" in blocks[0]
    assert blocks[1].strip() == 'pip install -e ".[test]" && python -m pytest -q'


def test_front_door():
    assert len(README.splitlines()) <= 200
    sections = re.findall(r"^## (.*)", README, re.M)
    for name in ("Quickstart", "What it is", "Train", "Your own training script",
                 "Three backends", "What you see"):
        assert name in sections, name
    for link in re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)", README):
        assert (ROOT / link).exists(), link
