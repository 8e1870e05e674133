"""The dissection jobs' code inputs: the per-shard stages (the model-running jobs) are not rerun by
an edit of code only the gather runs (the chance level, the IoU table, the gather itself)."""

import re
from pathlib import Path

import pytest
import yaml

from cnninterp.codedeps import PACKAGE_DIR, code_files, direct_imports

RULES = Path(__file__).resolve().parents[1] / "rules" / "dissect.smk"
PER_SHARD = ("dissect_quantiles", "dissect_thresholds", "dissect_tally")
GATHER_ONLY = {"dissect/chance.py", "dissect/labels.py", "dissect/gather.py"}


def rule_code_files() -> dict[str, set[str]]:
    """{rule: package files (relative to the package) of its ``code=`` input} as ``code()`` in
    rules/common.smk computes them: cli.py, the closure of what cli.py imports at module level and
    of the modules named in the rule file's ``NAME = code("m", ...)`` assignment."""
    text = RULES.read_text()
    calls = {name: re.findall(r'"([\w.]+)"', args) for name, args in re.findall(r"^(\w+) = code\((.*?)\)", text, re.M | re.S)}
    entry = direct_imports("cnninterp.cli", top_level=True)
    files = {}
    for rule, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", text, re.M):
        name = re.search(r"^\s+code=(\w+),", body, re.M)
        if name and rule.startswith("dissect_"):
            paths = code_files(*entry, *(f"cnninterp.{m}" for m in calls[name.group(1)]))
            files[rule] = {p.relative_to(PACKAGE_DIR).as_posix() for p in paths} | {"cli.py"}
    return files


def test_per_shard_jobs_do_not_run_the_gathers_code():
    """Every dissection job listed dissect.engine's closure, which held chance.py and labels.py
    (engine.py imported chance at the top and labels inside gather()): an edit of either reran
    every model's quantile pass and tallies, the jobs that run the model."""
    files = rule_code_files()
    assert set(PER_SHARD) | {"dissect_gather"} <= set(files), sorted(files)
    for rule in PER_SHARD:
        assert "dissect/engine.py" in files[rule], rule
        assert not GATHER_ONLY & files[rule], (rule, sorted(GATHER_ONLY & files[rule]))


def test_the_gathers_code_is_what_its_command_runs():
    """The gather runs the chance level, the IoU table, the gather module and the engine's helpers
    it imports (vocabulary, shard checks), and cli.py's option check (config)."""
    files = rule_code_files()["dissect_gather"]
    assert GATHER_ONLY | {"dissect/engine.py", "config.py", "cli.py", "argtypes.py"} <= files, sorted(files)


def test_the_stages_module_imports_no_gather_code():
    """engine.py (the per-shard stages) imports neither the gather nor what only it runs, even
    inside a function (codedeps counts those too)."""
    imported = direct_imports("cnninterp.dissect.engine")
    assert not {"cnninterp.dissect.chance", "cnninterp.dissect.labels", "cnninterp.dissect.gather", "cnninterp.dissect.pipeline"} & imported


@pytest.mark.slow
def test_an_edit_of_the_chance_level_plans_only_the_gathers(dag_run):
    """Dry runs on the session's complete run: an edit of chance.py plans each model's gather and
    what reads its results (the report; the ICNN evaluation, which dissects in process), no
    quantile pass, threshold merge or tally; an edit of engine.py plans the per-shard stages again."""
    from dag import plan_after_code_edit, tiny_config

    from cnninterp.config import method_enabled

    expected = {"dissect_gather", "report", "all"}
    if method_enabled(yaml.safe_load(tiny_config()), "icnn"):
        expected.add("icnn_evaluate")
    plan = plan_after_code_edit(dag_run, "workflow/cnninterp/dissect/chance.py")
    assert {rule for rule, _ in plan} == expected
    assert sorted(w for r, w in plan if r == "dissect_gather") == ["model=baseline", "model=baseline_random"]
    assert set(PER_SHARD) | {"dissect_gather"} <= {rule for rule, _ in plan_after_code_edit(dag_run, "workflow/cnninterp/dissect/engine.py")}
