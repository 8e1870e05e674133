"""Issue 17's switchable parts off vs on, alternated, on the default's two dissections through Snakemake.

"Off" is `dissect.defaults.memory_format: contiguous` (NCHW forward) and `dissect.shards_per_job: 1`
(a job per shard and stage, as before issue 17); "on" is config.yaml's (auto: channels-last; auto
grouping). The compiled host passes, the decoding thread and channels-last training have no
switch, so they are in both. One work folder (``tests/dag.make_workdir``, other methods off): the
first run trains once; each run then reruns the dissections only (``--forcerun dissect_quantiles``)
and prints their jobs, job seconds and CPU seconds (``default_chain.chain_times``), wall time and
the detector counts (equal in both modes), as JSON lines:

    .venv/bin/python benchmarks/dissect_switches.py /tmp/switches
"""

import json
import shutil
import sys
import time
from pathlib import Path
import yaml
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]
from dag import make_workdir, methods_off, snakemake
from default_chain import chain_times

text = (ROOT / "config.yaml").read_text() + "\n" + methods_off()
work = Path(sys.argv[1])
if work.is_dir():
    (work / "tiny.yaml").write_text(text)
else:
    make_workdir(work, text)
base = yaml.safe_load((work / "tiny.yaml").read_text())
targets = ["results/dissect/baseline/summary.json", "results/dissect/baseline_random/summary.json"]
records = []
for i, mode in enumerate(["on", "off", "on", "off", "on"]):
    cfg = json.loads(json.dumps(base))
    if mode == "off":
        cfg["dissect"]["defaults"]["memory_format"] = "contiguous"; cfg["dissect"]["shards_per_job"] = 1
    (work / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    shutil.rmtree(work / "results/benchmarks/dissect", ignore_errors=True)
    start = time.time()
    proc = snakemake(work, "--cores", "2", "--forcerun", "dissect_quantiles", *targets, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = {"run": i, "mode": mode, "wall_s": round(time.time() - start, 1), **chain_times(work / "results/benchmarks")["dissect baseline + random"]}
    rec["summary"] = {m: {l: v["detectors"] for l, v in json.loads((work / f"results/dissect/{m}/summary.json").read_text())["layers"].items()} for m in ("baseline", "baseline_random")}
    records.append(rec); print(json.dumps(rec), flush=True)
    # the next mode's config change reruns the dissections only (training is done)
