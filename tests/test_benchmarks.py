"""The benchmark scripts still run against the package (they are not otherwise imported by tests,
and an API change once broke benchmarks/dissect.py silently). Tiny sizes: this checks that they
work and what they compare, not their figures."""

import json
import subprocess
import sys

from conftest import ROOT


def _run(script, *args):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_dissection_benchmark_times_forward_and_dissection():
    record = _run("dissect.py", "--images", "32", "--size", "64", "--repeats", "1", "--skip-memory")
    assert record["dissect_over_forward"] > 1 and record["tally_layer4_images_per_s"] > 0


def test_the_gpu_check_runs_and_reports_every_comparison():
    # a smoke test: on the CPU it compares the CPU with itself (the device counting it exists for
    # is tested against the host loop in test_quantiles); on a GPU machine benchmarks/gpu.sh runs
    # it with --device cuda
    record = _run("gpu_check.py", "--device", "cpu", "--images", "40", "--size", "64")
    fields = {"thresholds_differ", "max_threshold_difference", "intersections_differ", "intersection_count_difference",
              "activation_count_difference"}
    assert all(set(record[layer]) == fields for layer in ("layer2", "layer4")), record
