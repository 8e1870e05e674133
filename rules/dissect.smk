def settings(wildcards):
    """Effective dissection settings of the model named by the wildcard."""
    return dissect_settings(CFG, wildcards.model)


def model_inputs(wildcards):
    """Files the model is built from: a trained checkpoint or a user's state_dict (if any)."""
    s = settings(wildcards)
    kind, name = s["source"].split(":", 1)
    if kind == "trained" and not s["random_init"]:
        return [f"results/models/{name}/model.pt"]
    return [s["checkpoint"]] if s["checkpoint"] else []


def model_args(wildcards):
    """The --model/--checkpoint/--init-seed/--layers/... arguments for the wildcard's model."""
    s = settings(wildcards)
    kind, name = s["source"].split(":", 1)
    if kind == "trained" and not s["random_init"]:
        spec = f"--model checkpoint --checkpoint results/models/{name}/model.pt"
    elif kind == "trained":
        spec = f"--model torchvision:{CFG['train'][name]['arch']} --init-seed {s['init_seed']}"
    else:
        spec = f"--model torchvision:{name} --init-seed {s['init_seed']}"
        if s["checkpoint"]:
            spec += f" --checkpoint {s['checkpoint']}"
    return (
        f"{spec} --layers {','.join(s['layers'])} --preprocess {s['preprocess']}"
        f" --batch-size {s['batch_size']} --device {CFG['device']}"
    )


def setting(key):
    return lambda wc: settings(wc)[key]


def parts(kind):
    """Per-shard part files of one kind (quantiles or tally) for the wildcard's model."""

    def inner(wildcards):
        return expand(
            "results/dissect/{model}/parts/{kind}-{shard}.npz",
            model=wildcards.model,
            kind=kind,
            shard=shard_names(wildcards),
        )

    return inner


ENGINE = code(
    "dissect/engine.py",
    "dissect/activations.py",
    "dissect/quantiles.py",
    "dissect/tally.py",
    "models/backbones.py",
)


rule dissect_quantiles:
    output:
        temp("results/dissect/{model}/parts/quantiles-{shard}.npz"),
    input:
        manifest=f"{SHARDS}/manifest.json",
        shard=f"{SHARDS}/{{shard}}.tar",
        model=model_inputs,
        code=ENGINE,
    params:
        model=model_args,
        quantile=setting("quantile"),
    threads: THREADS
    resources:
        gpu=1,
    log:
        "results/logs/dissect/{model}/quantiles-{shard}.log",
    benchmark:
        "results/benchmarks/dissect/{model}/quantiles-{shard}.tsv"
    conda:
        ENV
    shell:
        "cnninterp --threads {threads} dissect-quantiles {params.model}"
        " --manifest {input.manifest} --shard {input.shard}"
        " --quantile {params.quantile} --out {output} > {log} 2>&1"


rule dissect_thresholds:
    output:
        "results/dissect/{model}/thresholds.npz",
    input:
        manifest=f"{SHARDS}/manifest.json",
        parts=parts("quantiles"),
        code=code("dissect/quantiles.py", "dissect/engine.py"),
    params:
        layers=lambda wc: ",".join(settings(wc)["layers"]),
        quantile=setting("quantile"),
    log:
        "results/logs/dissect/{model}/thresholds.log",
    conda:
        ENV
    shell:
        "cnninterp dissect-thresholds --manifest {input.manifest} --layers {params.layers}"
        " --quantile {params.quantile} --out {output} {input.parts} > {log} 2>&1"


rule dissect_tally:
    output:
        temp("results/dissect/{model}/parts/tally-{shard}.npz"),
    input:
        manifest=f"{SHARDS}/manifest.json",
        shard=f"{SHARDS}/{{shard}}.tar",
        thresholds="results/dissect/{model}/thresholds.npz",
        model=model_inputs,
        code=ENGINE,
    params:
        model=model_args,
        top_images=setting("top_images"),
    threads: THREADS
    resources:
        gpu=1,
    log:
        "results/logs/dissect/{model}/tally-{shard}.log",
    benchmark:
        "results/benchmarks/dissect/{model}/tally-{shard}.tsv"
    conda:
        ENV
    shell:
        "cnninterp --threads {threads} dissect-tally {params.model}"
        " --manifest {input.manifest} --shard {input.shard} --thresholds {input.thresholds}"
        " --top-images {params.top_images} --out {output} > {log} 2>&1"


rule dissect_gather:
    output:
        iou="results/dissect/{model}/iou.parquet",
        summary="results/dissect/{model}/summary.json",
        top_images="results/dissect/{model}/top_images.npz",
    input:
        manifest=f"{SHARDS}/manifest.json",
        thresholds="results/dissect/{model}/thresholds.npz",
        parts=parts("tally"),
        code=code("dissect/engine.py", "dissect/labels.py", "dissect/tally.py"),
    params:
        layers=lambda wc: ",".join(settings(wc)["layers"]),
        denominator=setting("denominator"),
        iou_threshold=setting("iou_threshold"),
        top_images=setting("top_images"),
        settings=lambda wc: json.dumps(
            {"model": wc.model, "source": settings(wc)["source"]}, sort_keys=True
        ),
    log:
        "results/logs/dissect/{model}/gather.log",
    conda:
        ENV
    shell:
        "cnninterp dissect-gather --manifest {input.manifest} --layers {params.layers}"
        " --thresholds {input.thresholds} --denominator {params.denominator}"
        " --iou-threshold {params.iou_threshold} --top-images {params.top_images}"
        " --settings-json {params.settings:q} --out results/dissect/{wildcards.model}"
        " {input.parts} > {log} 2>&1"
