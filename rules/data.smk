rule broden_synthesize:
    input:
        code("data.synthetic_broden"),
    output:
        directory("results/data/broden/synthetic"),
    log:
        "results/logs/data/broden_synthesize.log",
    benchmark:
        "results/benchmarks/data/broden_synthesize.tsv"
    conda:
        ENV
    params:
        n_images=BRODEN["synthetic"]["n_images"],
        image_size=BRODEN["synthetic"]["image_size"],
        seed=BRODEN["synthetic"]["seed"],
        val_fraction=BRODEN["synthetic"]["val_fraction"],
    shell:
        "cnninterp data synth-broden --out {output:q} --n-images {params.n_images:q}"
        " --image-size {params.image_size:q} --seed {params.seed:q}"
        " --val-fraction {params.val_fraction:q} > {log:q} 2>&1"


# a checkpoint: what reads its record (broden_source_file, which checks a pinned sha256 against
# it) is evaluated again once a download is done, before the shards are made
checkpoint broden_download:
    output:
        folder=directory("results/data/broden/download"),
        info="results/data/broden/download.json",
    log:
        "results/logs/data/broden_download.log",
    benchmark:
        "results/benchmarks/data/broden_download.tsv"
    conda:
        ENV
    params:
        # the URL names the archive; broden.download.sha256 is no param here (a pin would rerun
        # the download and everything after it): it is checked against download.json instead
        url=BRODEN["download"]["url"],
    shell:
        "cnninterp data fetch-broden --url {params.url:q}"
        " --archive results/data/broden/broden.zip --out {output.folder:q}"
        " --info {output.info:q} > {log:q} 2>&1"


checkpoint broden_shards:
    input:
        folder=broden_folder,
        tables=broden_tables,
        source_file=broden_source_file,
        code=code("data.broden_shards"),
    output:
        manifest=report(
            f"{SHARDS}/manifest.json",
            caption="../workflow/report/manifest.rst",
            category="Data",
        ),
    log:
        "results/logs/data/broden_shards.log",
    benchmark:
        "results/benchmarks/data/broden_shards.tsv"
    conda:
        ENV
    params:
        shard_size=BRODEN["shard_size"],
        source_file=lambda wc, input: (
            shell_args("--source-file", input.source_file) if input.source_file else ""
        ),
        source=broden_source,
        # the probe's settings only: the training task (scene_task) has shards of its own, the
        # blocks of the sources not in use do not make these shards, and a pinned download
        # sha256 only checks the archive (broden_source_file)
        config=json.dumps(
            {
                k: (
                    {x: y for x, y in v.items() if x != "sha256"}
                    if k == "download"
                    else v
                )
                for k, v in BRODEN.items()
                if k != "scene_task"
                and (k == BRODEN["source"] or k not in BRODEN_SOURCES)
            },
            sort_keys=True,
        ),
        out=lambda wc, output: Path(output.manifest).parent,
    shell:
        "cnninterp data shard-broden --broden {input.folder:q} --out {params.out:q}"
        " --shard-size {params.shard_size:q} --source {params.source:q}"
        " {params.source_file}"
        " --config-json {params.config:q} > {log:q} 2>&1"


SCENE_TASK = BRODEN["scene_task"]
TASK_SHARDS = "results/shards/scenes"


rule scenes_synthesize:
    input:
        code("data.synthetic_broden"),
    output:
        directory("results/data/scenes/synthetic"),
    log:
        "results/logs/data/scenes_synthesize.log",
    benchmark:
        "results/benchmarks/data/scenes_synthesize.tsv"
    conda:
        ENV
    params:
        n_images=SCENE_TASK["n_images"],
        image_size=BRODEN["synthetic"]["image_size"],
        seed=SCENE_TASK["seed"],
        val_fraction=SCENE_TASK["val_fraction"],
        ground_rule=SCENE_TASK["ground_rule"],
        object_rule=SCENE_TASK["object_rule"],
        third_object=SCENE_TASK["third_object"],
    shell:
        "cnninterp data synth-scenes --out {output:q} --n-images {params.n_images:q}"
        " --image-size {params.image_size:q} --seed {params.seed:q}"
        " --val-fraction {params.val_fraction:q} --ground-rule {params.ground_rule:q}"
        " --object-rule {params.object_rule:q} --third-object {params.third_object:q}"
        " > {log:q} 2>&1"


rule scenes_shards:
    input:
        folder="results/data/scenes/synthetic",
        code=code("data.broden_shards"),
    output:
        manifest=f"{TASK_SHARDS}/manifest.json",
    log:
        "results/logs/data/scenes_shards.log",
    benchmark:
        "results/benchmarks/data/scenes_shards.tsv"
    conda:
        ENV
    params:
        shard_size=SCENE_TASK["shard_size"],
        source=json.dumps(
            {
                "kind": "synthetic_scene_task",
                "image_size": BRODEN["synthetic"]["image_size"],
                **SCENE_TASK,
            },
            sort_keys=True,
        ),
        config=json.dumps(
            {
                "scene_task": SCENE_TASK,
                "image_size": BRODEN["synthetic"]["image_size"],
            },
            sort_keys=True,
        ),
        out=lambda wc, output: Path(output.manifest).parent,
    shell:
        "cnninterp data shard-broden --broden {input.folder:q} --out {params.out:q}"
        " --shard-size {params.shard_size:q} --source {params.source:q}"
        " --config-json {params.config:q} > {log:q} 2>&1"
