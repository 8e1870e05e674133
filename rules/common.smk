import json
import os
import shlex
import sys
from pathlib import Path

from cnninterp.config import (
    check_train_archs,
    dissect_settings,
    method_enabled,
    validate_config,
)
from cnninterp.codedeps import direct_imports, relative_code_files
from cnninterp.errors import ConfigError
from cnninterp.data.broden import check_sources
from cnninterp.dissect.jobs import shards_per_job
from cnninterp.methods import metrics_path

# jobs call the `cnninterp` console script installed beside the Python that runs Snakemake
# (a venv's bin/ is not on PATH unless the venv is activated)
os.environ["PATH"] = os.pathsep.join(
    [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
)

# the package's own validation fills the schema's defaults the same way the CLI does
CFG = validate_config(config, source="the Snakemake config")
check_sources(CFG)
check_train_archs(CFG)
ENV = "../envs/cnninterp.yaml"
SHARDS = "results/shards/broden"
BRODEN = CFG["broden"]
DISSECT_MODELS = sorted(CFG["dissect"]["models"])
THREADS = CFG["threads"] or 2
# GPU rules ask for a GPU unless the config pins the CPU (a CPU-only cluster would wait forever)
GPUS = 0 if CFG["device"] == "cpu" else 1
CACHE = CFG["dissect"]["activation_cache"]
# each method's rules file appends its results/eval/<method>/metrics.json when the method is enabled
METHOD_TARGETS = []


wildcard_constraints:
    model="[A-Za-z0-9_]+",
    shard="[a-z]+-[0-9]{6}",


def shard_names(wildcards):
    """Shard file stems listed in the manifest (known once the sharding checkpoint ran)."""
    manifest = checkpoints.broden_shards.get().output.manifest
    with open(manifest) as handle:
        splits = json.load(handle)["splits"]
    return sorted(
        s["name"][: -len(".tar")] for v in splits.values() for s in v["shards"]
    )


def code(*modules, cli=None):
    """The package files a step runs: the import closure of ``modules`` (e.g. "dissect.engine")
    within cnninterp, plus cli.py (the entry point) and the closure of what cli.py imports at
    module level (argument types, errors: run for every command) and, for a method's verb
    (``cli="icnn"`` for ``cnninterp icnn ...``), the method's own cli.py, which parses that verb's
    arguments (as a file, not its closure: its lazy imports reach every step of the method), as
    paths relative to the workflow. What a command imports lazily is named in ``modules``.
    """
    root = Path(workflow.basedir) / "workflow" / "cnninterp"
    verbs = [f"workflow/cnninterp/{cli}/cli.py"] if cli else []
    entry = direct_imports("cnninterp.cli", root, top_level=True)
    return (
        ["workflow/cnninterp/cli.py"]
        + verbs
        + relative_code_files(
            *entry,
            *(f"cnninterp.{m}" for m in modules),
            workflow_dir=workflow.basedir,
            root=root,
        )
    )


def broden_folder(wildcards):
    """The unpacked Broden folder the shards are made from, by broden.source."""
    if BRODEN["source"] == "synthetic":
        return "results/data/broden/synthetic"
    if BRODEN["source"] == "download":
        return "results/data/broden/download"
    path = BRODEN["local"]["path"]
    if not path:
        raise ValueError("broden.source is 'local' but broden.local.path is not set")
    return path


def broden_tables(wildcards):
    """For broden.source local, the folder's tables (index.csv, label.csv, category.csv, c_*.csv:
    cnninterp.data.broden.table_files): an edit inside the folder does not change the
    folder's own time, so these are inputs of the shard job; none for the other sources.
    """
    if BRODEN["source"] != "local":
        return []
    from cnninterp.data.broden import table_files

    return [str(p) for p in table_files(BRODEN["local"]["path"])]


def driving_recordings(wildcards):
    """The files the driving shards read for attention.data.source udacity or comma (each
    interpolated.csv; each camera/*.h5 and its log/*.h5), so an
    edit of one reruns the shards; none for synthetic roads (cnninterp.data.driving.source_files).
    """
    from cnninterp.data.driving import source_files

    data = CFG["attention"]["data"]
    if data["source"] != "synthetic" and not data["path"]:
        raise ConfigError(
            f"attention.data.source is {data['source']!r} but attention.data.path is not set:"
            " give the folder of the recordings"
        )
    return [str(p) for p in source_files(data["source"], data["path"])]


def multiview_source_files(split):
    """For multiview.data.source h36m, the joints_3d.npy files of the subjects of ``split``
    ("train": train_subjects; "eval": test_subjects), as inputs of that shard job
    (cnninterp.data.h36m.source_files); the root and subjects are checked once, before any job
    (cnninterp.data.h36m.check_settings). None for the synthetic rig."""
    data = CFG["multiview"]["data"]
    if data["source"] != "h36m":
        return []
    from cnninterp.data.h36m import source_files

    subjects = data["h36m"]["train_subjects" if split == "train" else "test_subjects"]
    return [str(p) for p in source_files(data["h36m"]["root"], subjects)]


def multiview_cameras(split):
    """For multiview.data.source h36m, the digest of the cameras.json entries of ``split``'s
    subjects (cnninterp.data.h36m.camera_digest), a param of that shard job: cameras.json holds
    every subject's cameras, so as a file input it reran the training data (and the three
    trainings) when a test subject's camera changed. Empty for the synthetic rig."""
    data = CFG["multiview"]["data"]
    if data["source"] != "h36m":
        return ""
    from cnninterp.data.h36m import camera_digest

    subjects = data["h36m"]["train_subjects" if split == "train" else "test_subjects"]
    return camera_digest(data["h36m"]["root"], subjects)


BRODEN_SOURCES = (
    "synthetic",
    "local",
    "download",
)  # broden.source's values, each with its block


def broden_source_file(wildcards):
    """For downloads, the file recording the archive's URL and computed sha256 (goes into the
    manifest), once a pinned broden.download.sha256 has been checked against it
    (cnninterp.data.download.check_download_record: DataError naming the key and both digests).
    The pin is no job's param, so pinning the digest a run recorded reruns nothing; the download
    is a checkpoint, so a new download (a URL change) is checked when it is done, before sharding.
    """
    if BRODEN["source"] != "download":
        return []
    from cnninterp.data.download import check_download_record

    info = checkpoints.broden_download.get().output.info
    check_download_record(info, BRODEN["download"]["url"], BRODEN["download"]["sha256"])
    return [info]


def broden_source(wildcards):
    """JSON describing where the Broden folder came from, recorded in the manifest (for
    downloads the URL; the computed sha256 comes from broden_source_file, a pin only checks it).
    """
    kind = BRODEN["source"]
    source = {"kind": kind}
    if kind == "download":
        source["url"] = BRODEN["download"]["url"]
    elif kind == "local":
        source["path"] = BRODEN["local"]["path"]
    else:
        source.update(BRODEN["synthetic"])
    return json.dumps(source, sort_keys=True)


def shell_args(*args):
    """Arguments joined for a shell command line, each quoted (shlex.quote): user values never
    reach the shell unquoted, whatever characters they hold."""
    return " ".join(shlex.quote(str(a)) for a in args)


def train_setting(wildcards, key):
    """One setting of the train entry named by the wildcard."""
    return CFG["train"][wildcards.model][key]


def settings(wildcards):
    """Effective dissection settings of the model named by the wildcard."""
    return dissect_settings(CFG, wildcards.model)


def random_control_path(model):
    """The checkpoint of dissection model ``model`` when it is a random control with its trained
    model's BatchNorm treatment (random_bn: task; rule random_control), else None."""
    s = dissect_settings(CFG, model)
    if s["random_init"] and s["random_bn"] == "task":
        return f"results/models/random/{model}/model.pt"
    return None


def model_inputs(wildcards):
    """Files the model is built from: a trained checkpoint, a random control's, or a user's
    state_dict (if any)."""
    s = settings(wildcards)
    kind, name = s["source"].split(":", 1)
    if kind == "trained" and not s["random_init"]:
        return [f"results/models/{name}/model.pt"]
    if random_control_path(wildcards.model):
        return [random_control_path(wildcards.model)]
    return [s["checkpoint"]] if s["checkpoint"] else []


def random_control_setting(wildcards, key):
    """``key`` of the train entry whose random control the wildcard's dissection model is."""
    name = settings(wildcards)["source"].split(":", 1)[1]
    if key == "preprocess":
        return CFG["train"][name].get("preprocess", "imagenet")
    return CFG["train"][name][key]


def train_shards_of(name):
    """The manifest of the shards train entry ``name`` trains on (train.<name>.data)."""
    if CFG["train"][name]["data"] == "scene_task":
        return f"{TASK_SHARDS}/manifest.json"
    return f"{SHARDS}/manifest.json"


def model_args(wildcards):
    """The --model/--checkpoint/--init-seed/--layers/... arguments for the wildcard's model (quoted)."""
    s = settings(wildcards)
    kind, name = s["source"].split(":", 1)
    if kind == "trained" and not s["random_init"]:
        spec = [
            "--model",
            "checkpoint",
            "--checkpoint",
            f"results/models/{name}/model.pt",
        ]
    elif random_control_path(wildcards.model):
        spec = [
            "--model",
            "checkpoint",
            "--checkpoint",
            random_control_path(wildcards.model),
        ]
    elif kind == "trained":
        spec = ["--model", f"torchvision:{CFG['train'][name]['arch']}"]
        spec += ["--init-seed", s["init_seed"]]
    else:
        spec = ["--model", f"torchvision:{name}", "--init-seed", s["init_seed"]]
        if s.get("weights"):
            spec += ["--weights", s["weights"]]
        if s["checkpoint"]:
            spec += ["--checkpoint", s["checkpoint"]]
    return f"{shell_args(*spec)} {run_args(wildcards)}"


def run_args(wildcards):
    """The --layers/--preprocess/--batch-size/--device arguments of the wildcard's dissection (quoted)."""
    s = settings(wildcards)
    return shell_args(
        "--layers",
        ",".join(s["layers"]),
        "--preprocess",
        s["preprocess"],
        "--batch-size",
        s["batch_size"],
        "--device",
        CFG["device"],
        "--memory-format",
        s["memory_format"],
    )


def tally_source_args(wildcards, input):
    """dissect-tally arguments naming the activation source (cache, or the model and its settings)."""
    if not CACHE:
        return model_args(wildcards)
    return f"{shell_args('--cache', input.cache)} {run_args(wildcards)}"


def setting(key):
    return lambda wc: settings(wc)[key]


def shard_groups(wildcards):
    """The shards of each dissection job: {first shard's stem: [shard stems]}, consecutive shards in
    manifest order, ``shards_per_job`` (cnninterp.dissect.jobs.shards_per_job) per job.
    """
    with open(checkpoints.broden_shards.get().output.manifest) as handle:
        manifest = json.load(handle)
    names = shard_names(wildcards)
    per = shards_per_job(manifest, CFG["dissect"]["shards_per_job"])
    return {names[i]: names[i : i + per] for i in range(0, len(names), per)}


def group_shards(wildcards):
    """The shard files of the job named by the wildcard (its group's first shard)."""
    groups = shard_groups(wildcards)
    if wildcards.shard not in groups:
        raise ValueError(
            f"{wildcards.shard} does not start a group of shards_per_job shards"
        )
    return [f"{SHARDS}/{name}.tar" for name in groups[wildcards.shard]]


def shard_options(wildcards, input):
    """--shard <file> for each shard of the job (quoted)."""
    return shell_args(*(a for path in input.shard for a in ("--shard", path)))


def parts(kind):
    """Per-job part files of one kind (quantiles or tally) for the wildcard's model."""

    def inner(wildcards):
        return expand(
            "results/dissect/{model}/parts/{kind}-{shard}.npz",
            model=wildcards.model,
            kind=kind,
            shard=sorted(shard_groups(wildcards)),
        )

    return inner


# Dissection jobs: the activation caches and each job's memory and disk request
CACHE_FILE = "results/dissect/{model}/parts/cache-{shard}.acts"


def caches(wildcards):
    """Every quantile job's activation cache for the wildcard's model (the threshold merge
    refines from them: values at or above each unit's floor; with activation_cache also what
    the tally reads)."""
    return expand(
        CACHE_FILE, model=wildcards.model, shard=sorted(shard_groups(wildcards))
    )


# the SLURM profile's default mem_mb: a job never asks for less
MEM_FLOOR_MB = 2000


def job_resources(stage):
    """Resource callables of a dissection rule: mem_mb and disk_mb from the data and model
    (cnninterp.dissect.resources), at least MEM_FLOOR_MB; the floor where shapes are unknown.
    """
    from cnninterp.dissect.resources import (
        job_resources as estimate,
        layer_shapes,
        manifest_image_size,
    )

    def figures(wildcards):
        s = settings(wildcards)
        kind, name = s["source"].split(":", 1)
        arch = CFG["train"][name]["arch"] if kind == "trained" else name
        # the manifest as it stands (not checkpoints.get(): a resource function must not wait
        # for a checkpoint); none yet: the floor
        try:
            with open(f"{SHARDS}/manifest.json") as handle:
                manifest = json.load(handle)
        except (OSError, ValueError):
            return {}
        # the images' own size as the sharding recorded it (the dissection does not resize);
        # the configured size only for synthetic data; unknown: the floor
        synthetic = BRODEN["source"] == "synthetic"
        size = manifest_image_size(
            manifest, BRODEN["synthetic"]["image_size"] if synthetic else None
        )
        if size is None:
            return {}
        largest = max(
            x["samples"] for sp in manifest["splits"].values() for x in sp["shards"]
        )
        per = shards_per_job(manifest, CFG["dissect"]["shards_per_job"])
        shards = sum(len(sp["shards"]) for sp in manifest["splits"].values())
        labels = max(lab["number"] for lab in manifest["labels"]) + 1
        shapes = layer_shapes(arch, s["layers"], size)
        return estimate(
            stage,
            shapes,
            s["batch_size"],
            per * largest,
            s["top_images"],
            labels,
            tallies=-(-shards // per),
        )

    out = {"mem_mb": lambda wc: max(MEM_FLOOR_MB, figures(wc).get("mem_mb", 0))}
    if stage == "quantiles":  # the only job that writes a cache
        out["disk_mb"] = lambda wc: figures(wc).get("disk_mb", 0)
    return out
