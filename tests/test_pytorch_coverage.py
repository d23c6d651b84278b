"""docs/pytorch-coverage.md is what tools/pytorch_coverage.py generates from torch and distbp now
(rerun the script after adding a name), and its classification is sound."""
from tools import pytorch_coverage as cov


def test_committed_coverage_table_is_current():
    assert cov.main(["--check"]) == 0, "run: PYTHONPATH=. python tools/pytorch_coverage.py"


def test_every_torch_name_is_classified_and_not_applicable_has_a_reason():
    names = cov.torch_names()
    assert {"F", "nn", "optim"} <= set(names) and len(names["F"]) > 100 and len(names["nn"]) > 150
    for section, table in cov.NOT_APPLICABLE.items():
        for name, reason in table.items():
            assert name in names[section], f"{section}.{name} is not a torch name (stale entry)"
            assert len(reason) > 10
            assert cov._ours(section, name) is None, f"{name} is implemented: drop it from the table"
    for section, table in cov.NOT_YET.items():
        for name, reason in table.items():
            assert name in names[section] and len(reason) > 10
            assert cov._ours(section, name) is None, f"{name} is implemented: drop its NOT_YET note"
    rows = cov.rows("optim", names["optim"], {})
    assert ("SGD", "implemented", "") in rows and ("SparseAdam", "not applicable",
                                                   cov.NOT_APPLICABLE["optim"]["SparseAdam"]) in rows
    assert ("lr_scheduler.OneCycleLR", "implemented", "") in rows
