# Interpretable CNNs (Zhang, Wu, Zhu 2018): parts shards -> ICNN + ordinary CNN -> metrics (incl. dissection)
if method_enabled(CFG, "icnn"):
    ICNN = CFG["icnn"]
    PARTS = "results/shards/parts"
    PARTS_PROBE = "results/shards/parts_probe"
    METHOD_TARGETS.append(metrics_path("icnn"))
    ICNN_CUB = ICNN["data"]["source"] == "cub"
    if ICNN_CUB:
        from cnninterp.data.cub import FILES as CUB_FILES, check_cub_settings

        # a missing folder or annotation file is named before any job is planned
        check_cub_settings(ICNN["data"]["cub_root"], ICNN["data"]["negatives_root"])

    rule icnn_data:
        input:
            code=(
                code("data.cub", cli="icnn")
                if ICNN_CUB
                else code("data.parts", cli="icnn")
            ),
            # with source cub, an edit of the folder's annotation files reruns the chain (the images are not tracked)
            cub=(
                [str(Path(ICNN["data"]["cub_root"]) / f) for f in CUB_FILES]
                if ICNN_CUB
                else []
            ),
        output:
            manifest=f"{PARTS}/manifest.json",
            probe=f"{PARTS_PROBE}/manifest.json",
        log:
            "results/logs/icnn/data.log",
        benchmark:
            "results/benchmarks/icnn/data.tsv"
        conda:
            ENV
        params:
            out=lambda wc, output: Path(output.manifest).parent,
            probe=lambda wc, output: Path(output.probe).parent,
            image_size=ICNN["data"]["image_size"],
            # synthetic images only: with source cub the folder's split decides (no needless rerun)
            counts=(
                []
                if ICNN_CUB
                else [
                    "--train-images",
                    ICNN["data"]["train_images"],
                    "--test-images",
                    ICNN["data"]["test_images"],
                ]
            ),
            probe_images=ICNN["data"]["probe_images"],
            # with source cub and a negatives folder every negative image is used and the
            # fraction is not (write_cub_parts): then it must not key the chain
            positive=(
                []
                if ICNN_CUB and ICNN["data"]["negatives_root"]
                else ["--positive-fraction", ICNN["data"]["positive_fraction"]]
            ),
            shard_size=ICNN["data"]["shard_size"],
            seed=ICNN["seed"],
            # the CUB settings reach the job (and key its outputs) only with source cub; an empty
            # negatives_root is left out (Snakemake's :q drops an empty list item)
            cub=(
                [
                    "--source",
                    "cub",
                    "--cub-root",
                    ICNN["data"]["cub_root"],
                    "--disc-radius",
                    ICNN["data"]["disc_radius"],
                ]
                + (
                    ["--negatives-root", ICNN["data"]["negatives_root"]]
                    if ICNN["data"]["negatives_root"]
                    else []
                )
                if ICNN_CUB
                else []
            ),
        shell:
            "cnninterp icnn data --out {params.out:q} --probe-out {params.probe:q}"
            " {params.counts:q} --probe-images {params.probe_images:q} --image-size {params.image_size:q}"
            " {params.positive:q} --shard-size {params.shard_size:q}"
            " --seed {params.seed:q} {params.cub:q} > {log:q} 2>&1"

    rule icnn_train:
        input:
            manifest=f"{PARTS}/manifest.json",
            code=code("icnn.train", cli="icnn"),
        output:
            model="results/models/icnn_{kind}/model.pt",
            config="results/models/icnn_{kind}/config.json",
        log:
            "results/logs/icnn/train_{kind}.log",
        benchmark:
            "results/benchmarks/icnn/train_{kind}.tsv"
        wildcard_constraints:
            kind="icnn|cnn",
        conda:
            ENV
        threads: THREADS
        resources:
            gpu=GPUS,
        params:
            shards=lambda wc, input: Path(input.manifest).parent,
            channels=ICNN["model"]["channels"],
            filters=ICNN["model"]["filters"],
            epochs=ICNN["train"]["epochs"],
            batch_size=ICNN["train"]["batch_size"],
            lr=ICNN["train"]["lr"],
            # the ordinary CNN has no filter loss: its weight is 0, so changing it leaves that job alone
            weight=lambda wc: (
                ICNN["train"]["filter_weight"] if wc.kind == "icnn" else 0.0
            ),
            seed=ICNN["seed"],
            device=CFG["device"],
        shell:
            "cnninterp --threads {threads} icnn train --shards {params.shards:q}"
            " --out {output.model:q} --kind {wildcards.kind:q} --channels {params.channels:q}"
            " --filters {params.filters:q} --epochs {params.epochs:q}"
            " --batch-size {params.batch_size:q} --lr {params.lr:q}"
            " --filter-weight {params.weight:q} --seed {params.seed:q}"
            " --device {params.device:q} > {log:q} 2>&1"

    rule icnn_evaluate:
        input:
            manifest=f"{PARTS}/manifest.json",
            probe=f"{PARTS_PROBE}/manifest.json",
            icnn="results/models/icnn_icnn/model.pt",
            cnn="results/models/icnn_cnn/model.pt",
            code=code("icnn.evaluate", cli="icnn"),
        output:
            metrics=metrics_path("icnn"),
            figure="results/eval/icnn/figure.npz",
            dissect_icnn="results/eval/icnn/dissect/icnn/summary.json",
            dissect_cnn="results/eval/icnn/dissect/cnn/summary.json",
        log:
            "results/logs/icnn/evaluate.log",
        benchmark:
            "results/benchmarks/icnn/evaluate.tsv"
        conda:
            ENV
        threads: THREADS
        params:
            shards=lambda wc, input: Path(input.manifest).parent,
            probe=lambda wc, input: Path(input.probe).parent,
            top_images=ICNN["eval"]["top_images"],
            quantile=ICNN["eval"]["quantile"],
            iou_threshold=ICNN["eval"]["iou_threshold"],
            rows=ICNN["eval"]["figure_rows"],
            cols=ICNN["eval"]["figure_cols"],
        shell:
            "cnninterp --threads {threads} icnn evaluate --shards {params.shards:q}"
            " --probe {params.probe:q} --icnn {input.icnn:q} --cnn {input.cnn:q}"
            " --out {output.metrics:q} --top-images {params.top_images:q}"
            " --quantile {params.quantile:q} --iou-threshold {params.iou_threshold:q}"
            " --figure-rows {params.rows:q} --figure-cols {params.cols:q} > {log:q} 2>&1"
