# Multi-view pose (Remelli et al. 2020): train shards -> baseline, fusion, canonical models; eval shards (test, unseen) + models -> metrics
if method_enabled(CFG, "multiview"):
    from cnninterp.multiview.cli import data_args as multiview_data_args

    MULTIVIEW = CFG["multiview"]
    if MULTIVIEW["data"]["source"] == "h36m":
        from cnninterp.data.h36m import check_settings as check_h36m_settings

        # the root and subjects, before any job (a missing subject once became a partial split)
        check_h36m_settings(**MULTIVIEW["data"]["h36m"])
    # two shard folders: the training rules read only the train split's, keyed by the settings the
    # training samples depend on (data.multiview.SPLIT_FIELDS), so a test-only setting (test count,
    # held-out camera) reruns the evaluation data and the evaluation, not the three trainings
    MULTIVIEW_TRAIN_SHARDS = "results/shards/multiview/train"
    MULTIVIEW_EVAL_SHARDS = "results/shards/multiview/eval"
    METHOD_TARGETS.append(metrics_path("multiview"))

    # the code and files of the data source in use: a Human3.6M-style root's reader and the
    # joints_3d.npy files (the frame images are not tracked; the cameras are a param)
    MULTIVIEW_DATA_CODE = code(
        "data.multiview",
        *(["data.h36m"] if MULTIVIEW["data"]["source"] == "h36m" else []),
        cli="multiview",
    )

    rule multiview_data_train:
        input:
            recordings=lambda wc: multiview_source_files("train"),
            code=MULTIVIEW_DATA_CODE,
        output:
            manifest=f"{MULTIVIEW_TRAIN_SHARDS}/manifest.json",
        log:
            "results/logs/multiview/data_train.log",
        benchmark:
            "results/benchmarks/multiview/data_train.tsv"
        conda:
            ENV
        params:
            out=lambda wc, output: Path(output.manifest).parent,
            image_size=MULTIVIEW["data"]["image_size"],
            shard_size=MULTIVIEW["data"]["shard_size"],
            # the settings that change the training samples only (multiview.cli.data_args)
            source_args=multiview_data_args(
                MULTIVIEW["data"], MULTIVIEW["seed"], "train"
            ),
            # a Human3.6M root's cameras of this split's subjects (not passed: a rerun key)
            cameras=lambda wc: multiview_cameras("train"),
        shell:
            "cnninterp multiview data --out {params.out:q} --image-size {params.image_size:q}"
            " --shard-size {params.shard_size:q} {params.source_args:q} > {log:q} 2>&1"

    rule multiview_data_eval:
        input:
            recordings=lambda wc: multiview_source_files("eval"),
            code=MULTIVIEW_DATA_CODE,
        output:
            manifest=f"{MULTIVIEW_EVAL_SHARDS}/manifest.json",
        log:
            "results/logs/multiview/data_eval.log",
        benchmark:
            "results/benchmarks/multiview/data_eval.tsv"
        conda:
            ENV
        params:
            out=lambda wc, output: Path(output.manifest).parent,
            image_size=MULTIVIEW["data"]["image_size"],
            shard_size=MULTIVIEW["data"]["shard_size"],
            # the settings that change the test (and unseen-camera) samples only
            source_args=multiview_data_args(
                MULTIVIEW["data"], MULTIVIEW["seed"], "eval"
            ),
            # a Human3.6M root's cameras of this split's subjects (not passed: a rerun key)
            cameras=lambda wc: multiview_cameras("eval"),
        shell:
            "cnninterp multiview data --out {params.out:q} --image-size {params.image_size:q}"
            " --shard-size {params.shard_size:q} {params.source_args:q} > {log:q} 2>&1"

    rule multiview_train:
        input:
            manifest=f"{MULTIVIEW_TRAIN_SHARDS}/manifest.json",
            code=code("multiview.train", cli="multiview"),
        output:
            model="results/models/multiview_{kind}/model.pt",
            config="results/models/multiview_{kind}/config.json",
        log:
            "results/logs/multiview/train_{kind}.log",
        benchmark:
            "results/benchmarks/multiview/train_{kind}.tsv"
        wildcard_constraints:
            kind="baseline|fusion|canonical",
        conda:
            ENV
        threads: THREADS
        resources:
            gpu=GPUS,
        params:
            shards=lambda wc, input: Path(input.manifest).parent,
            channels=MULTIVIEW["model"]["channels"],
            points=MULTIVIEW["model"]["points"],
            hidden=MULTIVIEW["model"]["hidden"],
            epochs=MULTIVIEW["train"]["epochs"],
            batch_size=MULTIVIEW["train"]["batch_size"],
            lr=MULTIVIEW["train"]["lr"],
            weight_3d=MULTIVIEW["train"]["weight_3d"],
            seed=MULTIVIEW["seed"],
            device=CFG["device"],
        shell:
            "cnninterp --threads {threads} multiview train --shards {params.shards:q}"
            " --out {output.model:q} --kind {wildcards.kind:q} --channels {params.channels:q}"
            " --points {params.points:q} --hidden {params.hidden:q} --epochs {params.epochs:q}"
            " --batch-size {params.batch_size:q} --lr {params.lr:q} --weight-3d {params.weight_3d:q}"
            " --seed {params.seed:q} --device {params.device:q} > {log:q} 2>&1"

    rule multiview_evaluate:
        input:
            manifest=f"{MULTIVIEW_EVAL_SHARDS}/manifest.json",
            train_manifest=f"{MULTIVIEW_TRAIN_SHARDS}/manifest.json",
            baseline="results/models/multiview_baseline/model.pt",
            fusion="results/models/multiview_fusion/model.pt",
            canonical="results/models/multiview_canonical/model.pt",
            code=code("multiview.evaluate", cli="multiview"),
        output:
            metrics=metrics_path("multiview"),
            in_plane="results/eval/multiview/novel_in_plane.png",
            out_of_plane="results/eval/multiview/novel_out_of_plane.png",
        log:
            "results/logs/multiview/evaluate.log",
        benchmark:
            "results/benchmarks/multiview/evaluate.tsv"
        conda:
            ENV
        threads: THREADS
        params:
            shards=lambda wc, input: Path(input.manifest).parent,
            train_shards=lambda wc, input: Path(input.train_manifest).parent,
            samples=MULTIVIEW["eval"]["samples"],
            dlt_batch=MULTIVIEW["eval"]["dlt_batch"],
            dlt_repeat=MULTIVIEW["eval"]["dlt_repeat"],
            figure_rows=MULTIVIEW["eval"]["figure_rows"],
        shell:
            "cnninterp --threads {threads} multiview evaluate --shards {params.shards:q} --train-shards {params.train_shards:q}"
            " --baseline {input.baseline:q} --fusion {input.fusion:q} --canonical {input.canonical:q}"
            " --out {output.metrics:q} --samples {params.samples:q} --dlt-batch {params.dlt_batch:q}"
            " --dlt-repeat {params.dlt_repeat:q} --figure-rows {params.figure_rows:q} > {log:q} 2>&1"
