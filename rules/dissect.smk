# the per-shard commands also run, lazily imported by cli.py, the CLI values' check (config),
# the model loader (models.backbones) and the device choice (train.loop)
ENGINE = code("dissect.engine", "models.backbones", "config", "train.loop")
# the gather runs no model: its own module (with the chance level and the IoU table, which the
# per-shard stages do not import: an edit of them reruns only the gathers) and the values' check
GATHER = code("dissect.gather", "config")
# kept (dissect.keep_caches): a quantile change at or below dissect.cache_quantile then reruns
# the threshold merge, tallies and gather from them, not the model
KEEP_CACHES = CFG["dissect"]["keep_caches"]
QUANTILE_PART = "results/dissect/{model}/parts/quantiles-{shard}.npz"


rule dissect_quantiles:
    input:
        manifest=f"{SHARDS}/manifest.json",
        shard=group_shards,
        model=model_inputs,
        code=ENGINE,
    output:
        cache=CACHE_FILE if KEEP_CACHES else temp(CACHE_FILE),
        part=QUANTILE_PART if KEEP_CACHES else temp(QUANTILE_PART),
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
        # the cache's bound: it serves every quantile up to this one (kept caches only)
        quantile=lambda wc: max(
            settings(wc)["quantile"],
            CFG["dissect"]["cache_quantile"] if KEEP_CACHES else 0,
        ),
        top_images=setting("top_images"),
        cache="" if CACHE else "--values-only",
        shards=shard_options,
    shell:
        "cnninterp --threads {threads} dissect-quantiles {params.model}"
        " --manifest {input.manifest:q} {params.shards} --quantile {params.quantile:q}"
        " --top-images {params.top_images:q} --cache {output.cache:q} {params.cache}"
        " --out {output.part:q} > {log:q} 2>&1"


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
    threads: THREADS
    resources:
        **job_resources("thresholds"),
    params:
        layers=lambda wc: ",".join(settings(wc)["layers"]),
        quantile=setting("quantile"),
        caches=lambda wc, input: shell_args(
            *(a for c in input.caches for a in ("--cache", c))
        ),
    shell:
        "cnninterp --threads {threads} dissect-thresholds --manifest {input.manifest:q} --layers {params.layers:q}"
        " --quantile {params.quantile:q} {params.caches} --out {output:q} {input.parts:q}"
        " > {log:q} 2>&1"


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
        " --out {output:q} > {log:q} 2>&1"


rule dissect_gather:
    input:
        manifest=f"{SHARDS}/manifest.json",
        thresholds="results/dissect/{model}/thresholds.npz",
        parts=parts("tally"),
        code=GATHER,
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
    threads: THREADS
    resources:
        **job_resources("gather"),
    params:
        layers=lambda wc: ",".join(settings(wc)["layers"]),
        denominator=setting("denominator"),
        iou_threshold=setting("iou_threshold"),
        # a run killed after a finished tally leaves that tally's (temporary) cache: swept here
        caches="--remove-caches" if CACHE and not KEEP_CACHES else "",
        settings=lambda wc: json.dumps(
            {"model": wc.model, **settings(wc)}, sort_keys=True
        ),
        out=lambda wc, output: Path(output.summary).parent,
    shell:
        "cnninterp --threads {threads} dissect-gather --manifest {input.manifest:q} --layers {params.layers:q}"
        " --thresholds {input.thresholds:q} --denominator {params.denominator:q}"
        " --iou-threshold {params.iou_threshold:q}"
        " --settings-json {params.settings:q} {params.caches} --out {params.out:q}"
        " {input.parts:q} > {log:q} 2>&1"
