"""The README's code works when copied: every python block runs, and the Quickstart has exactly
the two shell commands CI runs."""
import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    out = io.StringIO()
    for block in blocks:
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), {})
    assert "-24.0" in out.getvalue().split()     # w.grad of the five-line example


def test_quickstart_has_two_one_line_shell_commands():
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick, re.S)
    assert len(blocks) == 2
    assert all(len(b.strip().splitlines()) == 1 for b in blocks)
    assert "distbp train --config configs/" in blocks[0]
    assert "pytest" in blocks[1]
