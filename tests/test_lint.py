"""The workflow stays lint-clean and snakefmt-formatted (DESIGN.md, Snakemake conventions)."""

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

BIN = Path(sys.executable).parent


def test_snakemake_lint_is_clean():
    proc = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Lints for" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


def test_snakefmt_check_passes():
    files = ["Snakefile", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "rules").glob("*.smk"))]
    proc = subprocess.run([str(BIN / "snakefmt"), "--check", *files], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


# Rule parameters that are whole argument lists, quoted when built (rules/common.smk's shell_args)
PREQUOTED = {"params.model", "params.sha256", "params.shards", "params.cache", "params.caches", "params.source", "params.source_file", "threads"}


def _rules():
    """(file, rule name, body text) of every rule in the Snakefile and rules/*.smk."""
    import re

    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        text = path.read_text()
        starts = [(m.start(), m.group(2), len(m.group(1))) for m in re.finditer(r"^( *)(?:rule|checkpoint) (\w+):", text, re.M)]
        for i, (start, name, indent) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            yield path.name, name, text[start:end]


def test_every_job_rule_has_a_log_and_a_benchmark_and_quotes_what_reaches_the_shell():
    import re

    problems = []
    for file, name, body in _rules():
        if "shell:" not in body:
            continue  # a target rule
        for key in ("log:", "benchmark:"):
            if key not in body:
                problems.append(f"{file} rule {name}: no {key}")
        shell = body.split("shell:", 1)[1]
        for field, quoted in re.findall(r"\{([A-Za-z_][\w.]*)(:q)?\}", shell):
            if not quoted and field not in PREQUOTED:
                problems.append(f"{file} rule {name}: {{{field}}} reaches the shell unquoted (use {{{field}:q}})")
    assert not problems, "\n".join(problems)
