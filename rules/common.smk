import json
from pathlib import Path

from cnninterp.config import dissect_settings, validate_config

# the package's own validation fills the schema's defaults the same way the CLI does
CFG = validate_config(config, source="the Snakemake config")
ENV = "../envs/cnninterp.yaml"
SHARDS = "results/shards/broden"
DISSECT_MODELS = sorted(CFG["dissect"]["models"])
TRAIN_MODELS = sorted(CFG["train"])
THREADS = CFG["threads"] or 2
PKG = str(Path(workflow.basedir) / "workflow" / "cnninterp")


wildcard_constraints:
    model="[A-Za-z0-9_]+",
    shard="[a-z]+-[0-9]{6}",


def shard_names(wildcards):
    """Shard file stems listed in the manifest (known once the sharding checkpoint ran)."""
    manifest = checkpoints.broden_shards.get().output.manifest
    with open(manifest) as handle:
        splits = json.load(handle)["splits"]
    return sorted(s["name"][: -len(".tar")] for v in splits.values() for s in v["shards"])


def code(*parts):
    """Package files a step depends on, so that editing them reruns the step."""
    return [f"{PKG}/{p}" for p in parts]


def code_tree(folder):
    """Every source and template file under a package folder (a step's code dependencies)."""
    root = Path(PKG) / folder
    return sorted(
        str(p) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
