"""The README's tables are generated from benchmarks/results/ (benchmarks/readme_tables.py): the
committed README is up to date with them, and each table names its command, machine and date."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "benchmarks" / "readme_tables.py")
T = importlib.util.module_from_spec(spec)
spec.loader.exec_module(T)

RESULTS = """# Some benchmark

<!-- readme-table: step | machine: 2 cores, 24 GB | date: 2030-01-02 | command: python bench.py | note: quiet -->
| case | threads | contender | ms/step | distbp / this | step RSS MB | traced |
|---|---:|---|---:|---:|---:|---:|
| MLP | 1 | distbp | 1.0 |  | 7 | 4 |
| MLP | 1 | torch | 2.0 | 0.50x | 8 | n/a |
| MLP | 2 | torch | 3.0 | 0.33x | 8 | n/a |

more prose
"""


def test_the_committed_readme_is_up_to_date():
    assert T.main(["--check"]) == 0, "run python benchmarks/readme_tables.py"


def test_every_table_block_in_the_readme_is_filled_and_captioned():
    readme = (ROOT / "README.md").read_text()
    blocks = T.BLOCK.findall(readme)
    assert {name for _, name, _, _ in blocks} == set(T.TABLES)
    for _, name, body, _ in blocks:
        caption, _, table = body.partition("\n\n")
        assert re.search(r"\d{4}-\d\d-\d\d", caption), (name, caption)   # the date
        assert caption.startswith("`") and "cores" in caption, (name, caption)
        assert table.count("\n|") >= 2, name


def test_render_selects_columns_rows_and_captions(tmp_path):
    (tmp_path / "step.md").write_text(RESULTS)
    readme = "intro\n<!-- readme-table: step -->\nstale\n<!-- /readme-table -->\nend\n"
    out = T.update(readme, tmp_path)
    assert out.startswith("intro\n<!-- readme-table: step -->\n`python bench.py` on 2 cores, 24 GB, "
                          "2030-01-02; quiet ([details](step.md)):\n\n")
    assert "| case | contender | ms/step | distbp / this | step RSS MB |\n" in out
    assert "| MLP | torch | 2.0 | 0.50x | 8 |\n<!-- /readme-table -->\nend\n" in out
    assert "traced" not in out and "stale" not in out
    assert T.update(out, tmp_path) == out                                 # idempotent


def test_a_results_file_without_its_marker_is_named(tmp_path):
    (tmp_path / "step.md").write_text(RESULTS.replace("readme-table: step", "readme-table: other"))
    with pytest.raises(ValueError, match="step.md: no '<!-- readme-table: step"):
        T.render("step", tmp_path)
    (tmp_path / "step.md").write_text(RESULTS.replace("| date: 2030-01-02 ", ""))
    with pytest.raises(ValueError, match="lacks date"):
        T.render("step", tmp_path)
    with pytest.raises(ValueError, match="unknown readme-table 'nope'"):
        T.update("<!-- readme-table: nope -->\n<!-- /readme-table -->", tmp_path)
