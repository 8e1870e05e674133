ENGINE = code("dissect.engine", "models.backbones")
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
    from cnninterp.dissect.resources import job_resources as estimate, layer_shapes

    def figures(wildcards):
        s = settings(wildcards)
        kind, name = s["source"].split(":", 1)
        arch = CFG["train"][name]["arch"] if kind == "trained" else name
        size = (
            BRODEN["synthetic"]["image_size"]
            if BRODEN["source"] == "synthetic"
            else 224
        )
        # the manifest as it stands (not checkpoints.get(): a resource function must not wait
        # for a checkpoint); none yet: the floor
        try:
            with open(f"{SHARDS}/manifest.json") as handle:
                manifest = json.load(handle)
        except (OSError, ValueError):
            return {}
        largest = max(
            x["samples"] for sp in manifest["splits"].values() for x in sp["shards"]
        )
        per_job = shards_per_job(manifest, CFG["dissect"]["shards_per_job"]) * largest
        labels = max(lab["number"] for lab in manifest["labels"]) + 1
        shapes = layer_shapes(arch, s["layers"], size)
        return estimate(
            stage, shapes, s["batch_size"], per_job, s["top_images"], labels
        )

    out = {"mem_mb": lambda wc: max(MEM_FLOOR_MB, figures(wc).get("mem_mb", 0))}
    if stage == "quantiles":  # the only job that writes a cache
        out["disk_mb"] = lambda wc: figures(wc).get("disk_mb", 0)
    return out


rule dissect_quantiles:
    input:
        manifest=f"{SHARDS}/manifest.json",
        shard=group_shards,
        model=model_inputs,
        code=ENGINE,
    output:
        cache=temp(CACHE_FILE),
        part=temp("results/dissect/{model}/parts/quantiles-{shard}.npz"),
    log:
        "results/logs/dissect/{model}/quantiles-{shard}.log",
    benchmark:
        "results/benchmarks/dissect/{model}/quantiles-{shard}.tsv"
    conda:
        ENV
    threads: THREADS
    resources:
        **job_resources("quantiles"),
        gpu=GPUS,
    params:
        model=model_args,
        quantile=setting("quantile"),
        top_images=setting("top_images"),
        cache="" if CACHE else "--values-only",
        shards=shard_options,
    shell:
        "cnninterp --threads {threads} dissect-quantiles {params.model}"
        " --manifest {input.manifest:q} {params.shards} --quantile {params.quantile:q}"
        " --top-images {params.top_images:q} --cache {output.cache:q} {params.cache}"
        " --out {output.part:q} > {log} 2>&1"


rule dissect_thresholds:
    input:
        manifest=f"{SHARDS}/manifest.json",
        parts=parts("quantiles"),
        caches=caches,
        code=ENGINE,
    output:
        "results/dissect/{model}/thresholds.npz",
    log:
        "results/logs/dissect/{model}/thresholds.log",
    benchmark:
        "results/benchmarks/dissect/{model}/thresholds.tsv"
    conda:
        ENV
    resources:
        **job_resources("thresholds"),
    params:
        layers=lambda wc: ",".join(settings(wc)["layers"]),
        quantile=setting("quantile"),
        caches=lambda wc, input: shell_args(
            *(a for c in input.caches for a in ("--cache", c))
        ),
    shell:
        "cnninterp dissect-thresholds --manifest {input.manifest:q} --layers {params.layers:q}"
        " --quantile {params.quantile:q} {params.caches} --out {output:q} {input.parts:q}"
        " > {log} 2>&1"


rule dissect_tally:
    input:
        **({"cache": CACHE_FILE} if CACHE else {"model": model_inputs}),
        manifest=f"{SHARDS}/manifest.json",
        shard=group_shards,
        thresholds="results/dissect/{model}/thresholds.npz",
        code=ENGINE,
    output:
        # kept: changing the denominator or the detector threshold then only re-gathers
        "results/dissect/{model}/parts/tally-{shard}.npz",
    log:
        "results/logs/dissect/{model}/tally-{shard}.log",
    benchmark:
        "results/benchmarks/dissect/{model}/tally-{shard}.tsv"
    conda:
        ENV
    threads: THREADS
    resources:
        **job_resources("tally"),
        gpu=GPUS,
    params:
        source=tally_source_args,
        shards=shard_options,
    shell:
        "cnninterp --threads {threads} dissect-tally {params.source}"
        " --manifest {input.manifest:q} {params.shards} --thresholds {input.thresholds:q}"
        " --out {output:q} > {log} 2>&1"


rule dissect_gather:
    input:
        manifest=f"{SHARDS}/manifest.json",
        thresholds="results/dissect/{model}/thresholds.npz",
        parts=parts("tally"),
        code=ENGINE,
    output:
        iou=report(
            "results/dissect/{model}/iou.parquet",
            caption="../workflow/report/iou.rst",
            category="Network Dissection",
            subcategory="{model}",
        ),
        summary=report(
            "results/dissect/{model}/summary.json",
            caption="../workflow/report/summary.rst",
            category="Network Dissection",
            subcategory="{model}",
        ),
        top_images="results/dissect/{model}/top_images.npz",
    log:
        "results/logs/dissect/{model}/gather.log",
    benchmark:
        "results/benchmarks/dissect/{model}/gather.tsv"
    conda:
        ENV
    resources:
        **job_resources("gather"),
    params:
        layers=lambda wc: ",".join(settings(wc)["layers"]),
        denominator=setting("denominator"),
        iou_threshold=setting("iou_threshold"),
        # a run killed after a finished tally leaves that tally's (temporary) cache: swept here
        caches="--remove-caches" if CACHE else "",
        settings=lambda wc: json.dumps(
            {"model": wc.model, **settings(wc)}, sort_keys=True
        ),
    shell:
        "cnninterp dissect-gather --manifest {input.manifest:q} --layers {params.layers:q}"
        " --thresholds {input.thresholds:q} --denominator {params.denominator:q}"
        " --iou-threshold {params.iou_threshold:q}"
        " --settings-json {params.settings:q} {params.caches} --out results/dissect/{wildcards.model}"
        " {input.parts:q} > {log} 2>&1"
