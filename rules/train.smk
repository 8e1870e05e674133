def train_setting(wildcards, key):
    """One setting of the train entry named by the wildcard."""
    return CFG["train"][wildcards.model][key]


rule train_baseline:
    output:
        "results/models/{model}/model.pt",
    input:
        manifest=f"{SHARDS}/manifest.json",
        code=code("train/baseline.py", "train/loop.py", "models/backbones.py"),
    params:
        arch=lambda wc: train_setting(wc, "arch"),
        task=lambda wc: train_setting(wc, "task"),
        epochs=lambda wc: train_setting(wc, "epochs"),
        batch_size=lambda wc: train_setting(wc, "batch_size"),
        lr=lambda wc: train_setting(wc, "lr"),
        momentum=lambda wc: train_setting(wc, "momentum"),
        weight_decay=lambda wc: train_setting(wc, "weight_decay"),
        preprocess=lambda wc: CFG["train"][wc.model].get("preprocess", "imagenet"),
        seed=CFG["seed"],
        device=CFG["device"],
    threads: THREADS
    resources:
        gpu=1,
    log:
        "results/logs/train/{model}.log",
    benchmark:
        "results/benchmarks/train/{model}.tsv"
    conda:
        ENV
    shell:
        "cnninterp --threads {threads} train baseline --shards {SHARDS} --out {output}"
        " --arch {params.arch} --task {params.task} --epochs {params.epochs}"
        " --batch-size {params.batch_size} --lr {params.lr} --momentum {params.momentum}"
        " --weight-decay {params.weight_decay} --preprocess {params.preprocess}"
        " --seed {params.seed} --device {params.device} > {log} 2>&1"
