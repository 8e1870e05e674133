BRODEN = CFG["broden"]


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


def broden_source(wildcards):
    """JSON describing where the Broden folder came from, recorded in the manifest."""
    kind = BRODEN["source"]
    source = {"kind": kind}
    if kind == "download":
        source.update(BRODEN["download"])
    elif kind == "local":
        source["path"] = BRODEN["local"]["path"]
    else:
        source.update(BRODEN["synthetic"])
    return json.dumps(source, sort_keys=True)


rule broden_synthesize:
    output:
        directory("results/data/broden/synthetic"),
    input:
        code("data/synthetic_broden.py"),
    params:
        n_images=BRODEN["synthetic"]["n_images"],
        image_size=BRODEN["synthetic"]["image_size"],
        seed=BRODEN["synthetic"]["seed"],
        val_fraction=BRODEN["synthetic"]["val_fraction"],
    log:
        "results/logs/data/broden_synthesize.log",
    conda:
        ENV
    shell:
        "cnninterp data synth-broden --out {output} --n-images {params.n_images}"
        " --image-size {params.image_size} --seed {params.seed}"
        " --val-fraction {params.val_fraction} > {log} 2>&1"


rule broden_download:
    output:
        directory("results/data/broden/download"),
    params:
        url=BRODEN["download"]["url"],
        sha256=(
            f"--sha256 {BRODEN['download']['sha256']}"
            if BRODEN["download"]["sha256"]
            else ""
        ),
    log:
        "results/logs/data/broden_download.log",
    conda:
        ENV
    shell:
        "cnninterp data fetch-broden --url {params.url:q} {params.sha256}"
        " --archive results/data/broden/broden.zip --out {output} > {log} 2>&1"


checkpoint broden_shards:
    output:
        manifest=f"{SHARDS}/manifest.json",
    input:
        folder=broden_folder,
        code=code("data/broden.py", "data/broden_shards.py", "data/shards.py"),
    params:
        shard_size=BRODEN["shard_size"],
        source=broden_source,
        config=json.dumps(BRODEN, sort_keys=True),
    log:
        "results/logs/data/broden_shards.log",
    benchmark:
        "results/benchmarks/data/broden_shards.tsv"
    conda:
        ENV
    shell:
        "cnninterp data shard-broden --broden {input.folder} --out {SHARDS}"
        " --shard-size {params.shard_size} --source {params.source:q}"
        " --config-json {params.config:q} > {log} 2>&1"
