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


def test_the_gpu_check_finds_a_device_equal_to_itself_on_the_cpu():
    # on a GPU machine the same script compares cuda with the cpu (benchmarks/gpu.sh)
    record = _run("gpu_check.py", "--device", "cpu", "--images", "40", "--size", "64")
    for layer in ("layer2", "layer4"):
        assert record[layer]["thresholds_differ"] == 0 and record[layer]["intersection_count_difference"] == 0
