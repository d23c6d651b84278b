"""distbp logs through Python's logging: named `distbp.*` loggers, the rank in every record, INFO
quiet on non-zero ranks; an embedding program silences or redirects it; the CLI's lines unchanged."""
import ast
import contextlib
import io
import logging
from pathlib import Path

import pytest

from distbp import logs as L
from distbp.train import checkpoint as ckpt

ROOT = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def fresh_rank(monkeypatch):
    for var in L.RANK_VARS + ("DISTBP_LOG_ALL_RANKS",):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(L, "_rank", None)
    monkeypatch.setattr(L, "_all_ranks", None)


@contextlib.contextmanager
def capture(name="distbp", level=logging.DEBUG):
    """A handler of the embedding program's own on the distbp logger, removed on exit; yields
    the stream it writes to."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(rank)s|%(name)s|%(levelname)s|%(message)s"))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(level)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def test_records_carry_the_rank_and_reach_the_programs_handler(caplog):
    logger = L.get_logger("distbp.test")
    with caplog.at_level(logging.INFO, logger="distbp"):
        logger.info("hello %s", "there")
    assert [(r.name, r.rank, r.getMessage()) for r in caplog.records] == \
        [("distbp.test", 0, "hello there")]
    assert L.get_logger("train.x").name == "distbp.train.x"


def test_non_zero_ranks_are_quiet_below_warning(monkeypatch):
    with capture() as stream:
        logger = L.get_logger("distbp.test")
        monkeypatch.setenv("RANK", "1")
        logger.info("info from 1")
        logger.warning("warning from 1")
        L.set_rank(0)                           # set_rank wins over the environment
        logger.info("info from 0")
        L.set_rank(3, all_ranks=True)
        logger.debug("debug from 3")
    assert stream.getvalue().splitlines() == [
        "1|distbp.test|WARNING|warning from 1", "0|distbp.test|INFO|info from 0",
        "3|distbp.test|DEBUG|debug from 3"]


@pytest.mark.parametrize("var", ["DISTBP_LOCAL_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK"])
def test_rank_comes_from_the_launchers_variables(monkeypatch, var):
    monkeypatch.setenv(var, "2")
    assert L.get_rank() == 2
    monkeypatch.setenv("DISTBP_LOG_ALL_RANKS", "1")
    with capture() as stream:
        L.get_logger("distbp.test").info("all ranks")
    assert stream.getvalue() == "2|distbp.test|INFO|all ranks\n"


def test_an_embedding_program_silences_distbp(tmp_path):
    """A library warning (a corrupt checkpoint skipped on resume) obeys the distbp logger's level."""
    (tmp_path / "step_000001.json").write_text("{not json")
    with capture(level=logging.ERROR) as stream, pytest.raises(Exception):
        ckpt.latest_intact(tmp_path)
    assert stream.getvalue() == ""
    with capture(level=logging.WARNING) as stream, pytest.raises(Exception):
        ckpt.latest_intact(tmp_path)
    assert stream.getvalue().startswith("0|distbp.train.checkpoint|WARNING|skipping corrupt")


def test_cli_logging_prints_the_commands_plain_lines_and_restores(capsys):
    root = logging.getLogger("distbp")
    before = (root.level, root.propagate, list(root.handlers))
    logger = L.get_logger("distbp.test")
    with L.cli_logging():
        with L.cli_logging(rank=0):             # nested (a worker in the launcher's process): once
            logger.info("done: 6 steps")
            L.line_logger(logger)("warning: step 3: non-finite gradient")
            logger.error("bad")
            logger.debug("not shown")
    assert capsys.readouterr().out == \
        "done: 6 steps\nwarning: step 3: non-finite gradient\nerror: bad\n"
    assert (root.level, root.propagate, list(root.handlers)) == before


def test_line_logger_maps_prefixes_to_levels(caplog):
    log = L.line_logger(L.get_logger("distbp.test"))
    with caplog.at_level(logging.INFO, logger="distbp"):
        log("warning: exploding")
        log("resumed from step_000010.json")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == \
        [("WARNING", "exploding"), ("INFO", "resumed from step_000010.json")]


# Command-line front ends may print; library code logs.
CLI_MODULES = {"distbp/cli.py", "distbp/train/cli.py", "distbp/train/plot.py", "distbp/data/cli.py",
               "distbp/comm/bench.py", "distbp/train/config_doc.py", "distbp/plan.py"}


def test_library_code_does_not_print():
    offenders = []
    for path in sorted((ROOT / "distbp").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in CLI_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{rel}:{node.lineno}")
            if isinstance(node, ast.keyword) and node.arg == "log" and \
                    getattr(node.value, "id", None) == "print":
                offenders.append(f"{rel}:{node.value.lineno} (log=print)")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.arguments):
                for default in node.defaults + node.kw_defaults:
                    if getattr(default, "id", None) == "print":
                        offenders.append(f"{rel}:{default.lineno} (default print)")
    assert not offenders, "use distbp.logs.get_logger(__name__) instead of print: " + \
        ", ".join(offenders)
