# Interpretable transformations (Worrall et al. 2017): digits and objects3d shards -> FTL model + baseline
# per dataset -> per-dataset metrics -> metrics.json
if method_enabled(CFG, "transform"):
    TRANSFORM = CFG["transform"]
    OBJ3D = TRANSFORM["objects3d"]
    DIGITS = "results/shards/digits"
    OBJECTS = "results/shards/objects3d"
    TRANSFORM_PARTS = ["results/eval/transform/digits.json"] + (
        ["results/eval/transform/objects3d.json"] if OBJ3D["enabled"] else []
    )
    METHOD_TARGETS.append(metrics_path("transform"))

    rule transform_data:
        input:
            code=code("data.digits", cli="transform"),
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
            code=code("transform.train", cli="transform"),
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
            # the baseline trains without the equivariance term: its settings do not key it
            weight=lambda wc: (
                TRANSFORM["train"]["equivariance_weight"] if wc.kind == "ftl" else 0.0
            ),
            norm=lambda wc: (
                TRANSFORM["train"]["equivariance_norm"]
                if wc.kind == "ftl"
                else "latent"
            ),
            seed=TRANSFORM["seed"],
            device=CFG["device"],
        shell:
            "cnninterp --threads {threads} transform train --shards {params.shards:q}"
            " --out {output.model:q} --kind {wildcards.kind:q} --channels {params.channels:q}"
            " --blocks {params.blocks:q} --identity-dim {params.identity_dim:q}"
            " --epochs {params.epochs:q} --batch-size {params.batch_size:q} --lr {params.lr:q}"
            " --equivariance-weight {params.weight:q} --equivariance-norm {params.norm:q}"
            " --seed {params.seed:q} --device {params.device:q} > {log:q} 2>&1"

    rule transform_evaluate:
        input:
            manifest=f"{DIGITS}/manifest.json",
            ftl="results/models/transform_ftl/model.pt",
            baseline="results/models/transform_baseline/model.pt",
            code=code("transform.evaluate", cli="transform"),
        output:
            metrics="results/eval/transform/digits.json",
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

    rule transform_metrics:
        input:
            parts=TRANSFORM_PARTS,
            code=code("transform.merge", cli="transform"),
        output:
            metrics=metrics_path("transform"),
        log:
            "results/logs/transform/metrics.log",
        benchmark:
            "results/benchmarks/transform/metrics.tsv"
        conda:
            ENV
        shell:
            "cnninterp transform merge --inputs {input.parts:q} --out {output.metrics:q} > {log:q} 2>&1"

    if OBJ3D["enabled"]:

        rule transform_objects3d_data:
            input:
                code=code("data.objects3d", cli="transform"),
            output:
                manifest=f"{OBJECTS}/manifest.json",
            log:
                "results/logs/transform/objects3d_data.log",
            benchmark:
                "results/benchmarks/transform/objects3d_data.tsv"
            conda:
                ENV
            params:
                out=lambda wc, output: Path(output.manifest).parent,
                train=OBJ3D["objects_train"],
                test=OBJ3D["objects_test"],
                size=OBJ3D["image_size"],
                step=OBJ3D["azimuth_step_deg"],
                elevation=OBJ3D["elevation_deg"],
                roll=OBJ3D["inplane_range_deg"],
                start=OBJ3D["heldout_start_deg"],
                width=OBJ3D["heldout_width_deg"],
                shard_size=OBJ3D["shard_size"],
                seed=TRANSFORM["seed"],
            shell:
                "cnninterp transform objects3d-data --out {params.out:q}"
                " --objects-train {params.train:q} --objects-test {params.test:q}"
                " --image-size {params.size:q} --azimuth-step-deg {params.step:q}"
                " --elevation-deg {params.elevation:q} --inplane-range-deg {params.roll:q}"
                " --heldout-start-deg {params.start:q}"
                " --heldout-width-deg {params.width:q} --shard-size {params.shard_size:q}"
                " --seed {params.seed:q} > {log:q} 2>&1"

        rule transform_train_objects3d:
            input:
                manifest=f"{OBJECTS}/manifest.json",
                code=code("transform.train", cli="transform"),
            output:
                model="results/models/transform_objects3d_{kind}/model.pt",
                config="results/models/transform_objects3d_{kind}/config.json",
            log:
                "results/logs/transform/train_objects3d_{kind}.log",
            benchmark:
                "results/benchmarks/transform/train_objects3d_{kind}.tsv"
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
                azimuth_blocks=OBJ3D["azimuth_blocks"],
                epochs=OBJ3D["epochs"],
                batch_size=TRANSFORM["train"]["batch_size"],
                lr=OBJ3D["lr"],
                # the baseline trains without the equivariance term: its settings do not key it
                weight=lambda wc: (
                    OBJ3D["equivariance_weight"] if wc.kind == "ftl" else 0.0
                ),
                norm=lambda wc: (
                    OBJ3D["equivariance_norm"] if wc.kind == "ftl" else "latent"
                ),
                seed=TRANSFORM["seed"],
                device=CFG["device"],
            shell:
                "cnninterp --threads {threads} transform train --shards {params.shards:q}"
                " --out {output.model:q} --kind {wildcards.kind:q} --channels {params.channels:q}"
                " --blocks {params.blocks:q} --identity-dim {params.identity_dim:q}"
                " --azimuth-blocks {params.azimuth_blocks:q} --epochs {params.epochs:q}"
                " --batch-size {params.batch_size:q} --lr {params.lr:q}"
                " --equivariance-weight {params.weight:q} --equivariance-norm {params.norm:q}"
                " --seed {params.seed:q} --device {params.device:q} > {log:q} 2>&1"

        rule transform_evaluate_objects3d:
            input:
                manifest=f"{OBJECTS}/manifest.json",
                ftl="results/models/transform_objects3d_ftl/model.pt",
                baseline="results/models/transform_objects3d_baseline/model.pt",
                code=code("transform.evaluate3d", cli="transform"),
            output:
                metrics="results/eval/transform/objects3d.json",
                turn="results/eval/transform/turn_objects3d.npy",
            log:
                "results/logs/transform/evaluate_objects3d.log",
            benchmark:
                "results/benchmarks/transform/evaluate_objects3d.tsv"
            conda:
                ENV
            threads: THREADS
            params:
                shards=lambda wc, input: Path(input.manifest).parent,
                samples=OBJ3D["samples"],
                rows=OBJ3D["turn_rows"],
                steps=OBJ3D["turn_steps"],
                seed=TRANSFORM["seed"],
            shell:
                "cnninterp --threads {threads} transform evaluate-objects3d"
                " --shards {params.shards:q} --ftl {input.ftl:q} --baseline {input.baseline:q}"
                " --out {output.metrics:q} --samples {params.samples:q}"
                " --turn-rows {params.rows:q} --turn-steps {params.steps:q}"
                " --seed {params.seed:q} > {log:q} 2>&1"
