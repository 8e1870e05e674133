# Interpretable transformations (Worrall et al. 2017): digits shards -> FTL model + baseline -> metrics
if method_enabled(CFG, "transform"):
    TRANSFORM = CFG["transform"]
    DIGITS = "results/shards/digits"
    METHOD_TARGETS.append(metrics_path("transform"))

    rule transform_data:
        input:
            code=code("data.digits"),
        output:
            manifest=f"{DIGITS}/manifest.json",
        log:
            "results/logs/transform/data.log",
        benchmark:
            "results/benchmarks/transform/data.tsv"
        conda:
            ENV
        params:
            out=lambda wc, output: Path(output.manifest).parent,
            upsample=TRANSFORM["data"]["upsample"],
            pad=TRANSFORM["data"]["pad"],
            test_fraction=TRANSFORM["data"]["test_fraction"],
            start=TRANSFORM["data"]["heldout_start_deg"],
            width=TRANSFORM["data"]["heldout_width_deg"],
            shard_size=TRANSFORM["data"]["shard_size"],
            seed=TRANSFORM["seed"],
        shell:
            "cnninterp transform data --out {params.out:q} --upsample {params.upsample:q}"
            " --pad {params.pad:q} --test-fraction {params.test_fraction:q}"
            " --heldout-start-deg {params.start:q} --heldout-width-deg {params.width:q}"
            " --shard-size {params.shard_size:q} --seed {params.seed:q} > {log:q} 2>&1"

    rule transform_train:
        input:
            manifest=f"{DIGITS}/manifest.json",
            code=code("transform.train"),
        output:
            model="results/models/transform_{kind}/model.pt",
            config="results/models/transform_{kind}/config.json",
        log:
            "results/logs/transform/train_{kind}.log",
        benchmark:
            "results/benchmarks/transform/train_{kind}.tsv"
        wildcard_constraints:
            kind="ftl|baseline",
        conda:
            ENV
        threads: THREADS
        resources:
            gpu=GPUS,
        params:
            shards=lambda wc, input: Path(input.manifest).parent,
            channels=TRANSFORM["model"]["channels"],
            blocks=TRANSFORM["model"]["blocks"],
            identity_dim=TRANSFORM["model"]["identity_dim"],
            epochs=TRANSFORM["train"]["epochs"],
            batch_size=TRANSFORM["train"]["batch_size"],
            lr=TRANSFORM["train"]["lr"],
            weight=TRANSFORM["train"]["equivariance_weight"],
            seed=TRANSFORM["seed"],
            device=CFG["device"],
        shell:
            "cnninterp --threads {threads} transform train --shards {params.shards:q}"
            " --out {output.model:q} --kind {wildcards.kind:q} --channels {params.channels:q}"
            " --blocks {params.blocks:q} --identity-dim {params.identity_dim:q}"
            " --epochs {params.epochs:q} --batch-size {params.batch_size:q} --lr {params.lr:q}"
            " --equivariance-weight {params.weight:q} --seed {params.seed:q}"
            " --device {params.device:q} > {log:q} 2>&1"

    rule transform_evaluate:
        input:
            manifest=f"{DIGITS}/manifest.json",
            ftl="results/models/transform_ftl/model.pt",
            baseline="results/models/transform_baseline/model.pt",
            code=code("transform.evaluate"),
        output:
            metrics=metrics_path("transform"),
            turn="results/eval/transform/turn_digits.npy",
        log:
            "results/logs/transform/evaluate.log",
        benchmark:
            "results/benchmarks/transform/evaluate.tsv"
        conda:
            ENV
        threads: THREADS
        params:
            shards=lambda wc, input: Path(input.manifest).parent,
            samples=TRANSFORM["eval"]["samples"],
            rows=TRANSFORM["eval"]["turn_rows"],
            steps=TRANSFORM["eval"]["turn_steps"],
            seed=TRANSFORM["seed"],
        shell:
            "cnninterp --threads {threads} transform evaluate --shards {params.shards:q}"
            " --ftl {input.ftl:q} --baseline {input.baseline:q} --out {output.metrics:q}"
            " --samples {params.samples:q} --turn-rows {params.rows:q}"
            " --turn-steps {params.steps:q} --seed {params.seed:q} > {log:q} 2>&1"
