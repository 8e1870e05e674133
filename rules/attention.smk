# Causal attention for steering (Kim & Canny 2017): driving shards -> three steering models -> metrics
if method_enabled(CFG, "attention"):
    from cnninterp.attention.cli import data_args

    ATTENTION = CFG["attention"]
    DRIVING = "results/shards/driving"
    ATTENTION_VARIANTS = {
        "reg": ("attention", ATTENTION["train"]["reg_weight"]),
        "noreg": ("attention", 0.0),
        "cnn": ("cnn", 0.0),
    }
    METHOD_TARGETS.append(metrics_path("attention"))

    rule attention_data:
        input:
            # a Udacity or comma.ai folder's tables and .h5 files (none for synthetic roads)
            recordings=driving_recordings,
            code=code("data.driving", "config", cli="attention"),
        output:
            manifest=f"{DRIVING}/{{split}}/manifest.json",
        log:
            "results/logs/attention/data_{split}.log",
        benchmark:
            "results/benchmarks/attention/data_{split}.tsv"
        wildcard_constraints:
            split="train|test",
        conda:
            ENV
        params:
            out=lambda wc, output: Path(output.manifest).parent,
            source=ATTENTION["data"]["source"],
            height=ATTENTION["data"]["height"],
            width=ATTENTION["data"]["width"],
            seq_len=ATTENTION["data"]["seq_len"],
            shard_size=ATTENTION["data"]["shard_size"],
            # each source's own settings only (a setting the source does not use must not key its
            # shards), and of those the ones that change this split's sequences (data_args)
            source_args=lambda wc: data_args(
                ATTENTION["data"], ATTENTION["seed"], wc.split
            ),
        shell:
            "cnninterp attention data --split {wildcards.split:q} --out {params.out:q} --source {params.source:q}"
            " --height {params.height:q} --width {params.width:q}"
            " --seq-len {params.seq_len:q} --shard-size {params.shard_size:q}"
            " {params.source_args:q} > {log:q} 2>&1"

    rule attention_train:
        input:
            manifest=f"{DRIVING}/train/manifest.json",
            code=code("attention.train", "config", cli="attention"),
        output:
            model="results/models/attention_{variant}/model.pt",
            config="results/models/attention_{variant}/config.json",
        log:
            "results/logs/attention/train_{variant}.log",
        benchmark:
            "results/benchmarks/attention/train_{variant}.tsv"
        wildcard_constraints:
            variant="reg|noreg|cnn",
        conda:
            ENV
        threads: THREADS
        resources:
            gpu=GPUS,
        params:
            shards=lambda wc, input: Path(input.manifest).parent,
            kind=lambda wc: ATTENTION_VARIANTS[wc.variant][0],
            reg_weight=lambda wc: ATTENTION_VARIANTS[wc.variant][1],
            coords="--coords" if ATTENTION["model"]["coords"] else "--no-coords",
            # the attention's own settings: the CNN baseline is trained without them (train.py
            # forces them off), so editing one must not retrain it
            located=lambda wc: (
                "--located"
                if ATTENTION_VARIANTS[wc.variant][0] == "attention"
                and ATTENTION["model"]["located"]
                else "--no-located"
            ),
            context_norm=lambda wc: (
                "--context-norm"
                if ATTENTION_VARIANTS[wc.variant][0] == "attention"
                and ATTENTION["model"]["context_norm"]
                else "--no-context-norm"
            ),
            uniform_start=lambda wc: (
                "--uniform-start"
                if ATTENTION_VARIANTS[wc.variant][0] == "attention"
                and ATTENTION["model"]["uniform_start"]
                else "--no-uniform-start"
            ),
            hidden=ATTENTION["model"]["hidden"],
            logit_scale=lambda wc: (
                ATTENTION["model"]["logit_scale"]
                if ATTENTION_VARIANTS[wc.variant][0] == "attention"
                else 1.0
            ),
            learn_scale=lambda wc: (
                "--learn-scale"
                if ATTENTION_VARIANTS[wc.variant][0] == "attention"
                and ATTENTION["model"]["learn_scale"]
                else "--no-learn-scale"
            ),
            clip_grad=ATTENTION["train"]["clip_grad"],
            epochs=ATTENTION["train"]["epochs"],
            batch_size=ATTENTION["train"]["batch_size"],
            lr=ATTENTION["train"]["lr"],
            seed=ATTENTION["seed"],
            device=CFG["device"],
        shell:
            "cnninterp --threads {threads} attention train --shards {params.shards:q}"
            " --out {output.model:q} --kind {params.kind:q} --reg-weight {params.reg_weight:q}"
            " {params.coords:q} {params.located:q} {params.context_norm:q} {params.uniform_start:q} --hidden {params.hidden:q} --epochs {params.epochs:q}"
            " --logit-scale {params.logit_scale:q} {params.learn_scale:q} --clip-grad {params.clip_grad:q}"
            " --batch-size {params.batch_size:q} --lr {params.lr:q} --seed {params.seed:q}"
            " --device {params.device:q} > {log:q} 2>&1"

    rule attention_evaluate:
        input:
            manifest=f"{DRIVING}/test/manifest.json",
            train_manifest=f"{DRIVING}/train/manifest.json",
            reg="results/models/attention_reg/model.pt",
            noreg="results/models/attention_noreg/model.pt",
            cnn="results/models/attention_cnn/model.pt",
            code=code("attention.evaluate", "config", cli="attention"),
        output:
            metrics=metrics_path("attention"),
            strip="results/eval/attention/strip.npy",
            blobs="results/eval/attention/blobs.npy",
        log:
            "results/logs/attention/evaluate.log",
        benchmark:
            "results/benchmarks/attention/evaluate.tsv"
        conda:
            ENV
        threads: THREADS
        params:
            shards=lambda wc, input: Path(input.manifest).parent,
            train_shards=lambda wc, input: Path(input.train_manifest).parent,
            filter_sequences=ATTENTION["eval"]["filter_sequences"],
            level=ATTENTION["eval"]["level"],
            sigma=ATTENTION["eval"]["sigma"],
            threshold=ATTENTION["eval"]["threshold"],
            dilation=ATTENTION["eval"]["cause_dilation"],
            strip_frames=ATTENTION["eval"]["strip_frames"],
            seed=ATTENTION["seed"],
        shell:
            "cnninterp --threads {threads} attention evaluate --shards {params.shards:q} --train-shards {params.train_shards:q}"
            " --attention {input.reg:q} --attention-no-reg {input.noreg:q} --cnn {input.cnn:q}"
            " --out {output.metrics:q} --filter-sequences {params.filter_sequences:q}"
            " --level {params.level:q} --sigma {params.sigma:q} --threshold {params.threshold:q}"
            " --cause-dilation {params.dilation:q} --strip-frames {params.strip_frames:q}"
            " --seed {params.seed:q} > {log:q} 2>&1"
