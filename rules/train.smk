rule train_baseline:
    input:
        # the separate training task (train.<name>.data: scene_task) or the probe shards
        manifest=lambda wc: train_shards_of(wc.model),
        code=code("train.baseline", "config"),
    output:
        # config.json is written beside model.pt: declared, so a failed retrain leaves neither
        model="results/models/{model}/model.pt",
        config="results/models/{model}/config.json",
    log:
        "results/logs/train/{model}.log",
    benchmark:
        "results/benchmarks/train/{model}.tsv"
    # only the names under train: (methods train their own models under results/models/ too)
    wildcard_constraints:
        model="|".join(sorted(CFG["train"])) or "(?!)",
    conda:
        ENV
    threads: THREADS
    resources:
        gpu=GPUS,
    params:
        arch=lambda wc: train_setting(wc, "arch"),
        task=lambda wc: train_setting(wc, "task"),
        epochs=lambda wc: train_setting(wc, "epochs"),
        batch_size=lambda wc: train_setting(wc, "batch_size"),
        lr=lambda wc: train_setting(wc, "lr"),
        momentum=lambda wc: train_setting(wc, "momentum"),
        weight_decay=lambda wc: train_setting(wc, "weight_decay"),
        bn_images=lambda wc: train_setting(wc, "bn_images"),
        preprocess=lambda wc: CFG["train"][wc.model].get("preprocess", "imagenet"),
        shards=lambda wc, input: Path(input.manifest).parent,
        seed=CFG["seed"],
        device=CFG["device"],
    shell:
        "cnninterp --threads {threads} train baseline --shards {params.shards:q} --out {output.model:q}"
        " --arch {params.arch:q} --task {params.task:q} --epochs {params.epochs:q}"
        " --batch-size {params.batch_size:q} --lr {params.lr:q} --momentum {params.momentum:q}"
        " --weight-decay {params.weight_decay:q} --bn-images {params.bn_images:q}"
        " --preprocess {params.preprocess:q}"
        " --seed {params.seed:q} --device {params.device:q} > {log:q} 2>&1"


rule random_control:
    input:
        # the trained model's training shards: its BatchNorm statistics come from them
        manifest=lambda wc: train_shards_of(settings(wc)["source"].split(":", 1)[1]),
        code=code("train.random_control", "config"),
    output:
        model="results/models/random/{model}/model.pt",
        config="results/models/random/{model}/config.json",
    log:
        "results/logs/train/random_{model}.log",
    benchmark:
        "results/benchmarks/train/random_{model}.tsv"
    conda:
        ENV
    threads: THREADS
    params:
        shards=lambda wc, input: Path(input.manifest).parent,
        arch=lambda wc: random_control_setting(wc, "arch"),
        task=lambda wc: random_control_setting(wc, "task"),
        batch_size=lambda wc: random_control_setting(wc, "batch_size"),
        bn_images=lambda wc: random_control_setting(wc, "bn_images"),
        preprocess=lambda wc: random_control_setting(wc, "preprocess"),
        init_seed=lambda wc: settings(wc)["init_seed"],
        seed=CFG["seed"],
    shell:
        "cnninterp --threads {threads} train random-control --shards {params.shards:q} --out {output.model:q}"
        " --arch {params.arch:q} --task {params.task:q} --init-seed {params.init_seed:q}"
        " --batch-size {params.batch_size:q} --bn-images {params.bn_images:q}"
        " --preprocess {params.preprocess:q} --seed {params.seed:q}"
        " > {log:q} 2>&1"
