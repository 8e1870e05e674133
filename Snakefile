"""cnninterp: raw image data -> shards -> trained models -> dissection -> HTML report.

Every rule body is one call of the ``cnninterp`` command line; the logic lives in the package.
"""

from snakemake.utils import min_version

from cnninterp.methods import installed_methods

min_version("9.0")


configfile: "config.yaml"


envvars:
    "PATH",


# the config is validated (schema + each method's block) by rules/common.smk, first included


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/dissect.smk"


# one rules file per installed method (cnninterp/methods.py); each adds its metrics to METHOD_TARGETS
for _method in installed_methods():

    include: f"rules/{_method}.smk"


include: "rules/report.smk"


rule all:
    default_target: True
    input:
        "results/report/index.html",
        expand("results/dissect/{model}/summary.json", model=DISSECT_MODELS),
        METHOD_TARGETS,
