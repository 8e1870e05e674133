rule config_snapshot:
    output:
        "results/config.json",
    log:
        "results/logs/config_snapshot.log",
    benchmark:
        "results/benchmarks/config_snapshot.tsv"
    conda:
        ENV
    params:
        config=json.dumps(CFG, sort_keys=True),
    shell:
        "cnninterp validate-config --json {params.config:q} --out {output:q} > {log:q} 2>&1"


rule report:
    input:
        config="results/config.json",
        manifest=f"{SHARDS}/manifest.json",
        summaries=expand("results/dissect/{model}/summary.json", model=DISSECT_MODELS),
        methods=METHOD_TARGETS,
        code=code("report.build", *(f"{m}.report" for m in installed_methods())),
    output:
        report(
            "results/report/index.html",
            caption="../workflow/report/report.rst",
            category="Report",
        ),
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        ENV
    params:
        out=lambda wc, output: Path(output[0]).parent,
    shell:
        "cnninterp report --config {input.config:q} --results results"
        " --out {params.out:q} > {log:q} 2>&1"
