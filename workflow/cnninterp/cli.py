"""``cnninterp <step> ...``: the command line every Snakemake rule calls.

Heavy libraries are imported inside the commands that need them, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from pathlib import Path

from .argtypes import finite_float, json_object, non_negative_int
from .errors import CnninterpError, ConfigError

log = logging.getLogger("cnninterp")


def _csv(text: str) -> list[str]:
    return [t for t in (s.strip() for s in text.split(",")) if t]


def _model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--model", required=required, help="torchvision:<arch> or 'checkpoint' (a model.pt written by 'cnninterp train')")
    p.add_argument("--checkpoint", default=None, help="state_dict file (torchvision specs) or project checkpoint")
    p.add_argument("--weights", default=None, help="torchvision's published weights for torchvision:<arch> (DEFAULT, IMAGENET1K_V1, ...), from torchvision's cache (TORCH_HOME)")
    p.add_argument("--init-seed", type=int, default=1, help="seed of the random initialisation when there is no checkpoint")
    p.add_argument("--num-classes", type=int, default=None, help="classes of the last layer (default: from the checkpoint, else 1000)")
    p.add_argument("--layers", type=_csv, required=True, help="comma-separated layer names as named_modules() spells them")
    p.add_argument("--preprocess", default="imagenet", choices=["imagenet", "netdissect_lite"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--memory-format", default="auto", choices=["auto", "channels_last", "contiguous"], help="memory format of the forward pass (auto: channels-last for CNNs)")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``cnninterp`` command."""
    parser = argparse.ArgumentParser(prog="cnninterp", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=non_negative_int, default=0,
                        help="CPU threads of torch and of the BLAS / OpenMP pools (0: their defaults, all cores)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate-config", help="check a config against the schema; optionally write it resolved")
    p.add_argument("config", nargs="*", help="YAML config file(s), each laid over the ones before as Snakemake lays --configfile over config.yaml")
    p.add_argument("--json", type=json_object, default=None, help="the config as a JSON string instead of a file")
    p.add_argument("--out", default=None, help="write the validated config, defaults filled in, as JSON here")

    data = sub.add_parser("data", help="fetch, synthesize and shard datasets").add_subparsers(dest="data_command", required=True)
    for verb, what, n_images in (
        ("synth-broden", "a synthetic probe set in Broden's on-disk layout", 1200),
        ("synth-scenes", "the synthetic scene-classification training task (Broden layout, scene labels only)", 3000),
    ):
        p = data.add_parser(verb, help=f"write {what}; a previous incomplete output is replaced")
        p.add_argument("--out", required=True)
        p.add_argument("--n-images", type=int, default=n_images)
        p.add_argument("--image-size", type=int, default=112)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--val-fraction", type=finite_float, default=0.2)
        if verb == "synth-scenes":
            # no defaults here: generate_scene_task's own defaults apply (one place says them)
            p.add_argument("--ground-rule", type=finite_float, default=None, help="probability that the ground is the scene's material (0, the default: a nuisance)")
            p.add_argument("--object-rule", type=finite_float, default=None, help="probability that each of the scene's two objects is kept (default 1)")
            p.add_argument("--third-object", type=finite_float, default=None, help="probability of a third, distractor object (default 0)")
    p = data.add_parser("fetch-broden", help="download (resumable) and safely extract a Broden zip")
    p.add_argument("--url", required=True)
    p.add_argument("--sha256", default=None)
    p.add_argument("--archive", required=True, help="where the zip is kept")
    p.add_argument("--out", required=True, help="folder to extract into")
    p.add_argument("--info", default=None, help="write the archive's url, sha256 and whether it was verified here (JSON)")
    p = data.add_parser("shard-broden", help="convert a Broden folder into WebDataset shards + manifest.json")
    p.add_argument("--broden", required=True, help="unpacked Broden folder (with index.csv)")
    p.add_argument("--out", required=True, help="shard folder, e.g. results/shards/broden")
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--source", type=json_object, default={}, help="JSON: where the folder came from (kind, url/path, sha256)")
    p.add_argument("--source-file", default=None, help="a JSON file merged into --source (e.g. fetch-broden --info)")
    p.add_argument("--config-json", type=json_object, default={}, help="JSON: the config fragment that made these shards")

    train = sub.add_parser("train", help="train models").add_subparsers(dest="train_command", required=True)
    p = train.add_parser("baseline", help="train a torchvision CNN to classify Broden images by scene or object")
    p.add_argument("--shards", required=True)
    p.add_argument("--out", required=True, help="checkpoint path (model.pt); config.json is written beside it")
    p.add_argument("--arch", required=True)
    p.add_argument("--task", default="scene", choices=["scene", "object"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=finite_float, default=0.05)
    p.add_argument("--momentum", type=finite_float, default=0.9)
    p.add_argument("--weight-decay", type=finite_float, default=5e-4)
    p.add_argument("--bn-images", type=int, default=1024, help="training images to re-estimate BatchNorm statistics on after the last epoch (0: keep the running averages)")
    p.add_argument("--preprocess", default="imagenet", choices=["imagenet", "netdissect_lite"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    p = train.add_parser("random-control", help="a trained model's random control: random weights, BatchNorm statistics "
                                               "re-estimated on its training images as the trained model's are")
    p.add_argument("--shards", required=True, help="the trained model's training shards")
    p.add_argument("--out", required=True, help="checkpoint path (model.pt); config.json is written beside it")
    p.add_argument("--arch", required=True)
    p.add_argument("--task", default="scene", choices=["scene", "object"])
    p.add_argument("--init-seed", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32, help="the trained model's batch size (the calibration batches are its)")
    p.add_argument("--bn-images", type=int, default=1024)
    p.add_argument("--preprocess", default="imagenet", choices=["imagenet", "netdissect_lite"])
    p.add_argument("--seed", type=int, default=0, help="the trained model's seed (it draws the calibration images)")

    p = sub.add_parser("dissect", help="dissect a model on Broden shards in one process")
    _model_args(p)
    p.add_argument("--shards", required=True, help="shard folder with manifest.json")
    p.add_argument("--out", required=True)
    _scoring_args(p)
    p.add_argument("--quantile", type=finite_float, default=0.005)
    p.add_argument("--top-images", type=int, default=8)
    p.add_argument("--no-cache", dest="cache", action="store_false", help="run the model twice instead of keeping an activation cache between the passes")

    p = sub.add_parser("dissect-quantiles", help="per-shard job: each unit's top activations and top images")
    _model_args(p)
    p.add_argument("--manifest", required=True)
    p.add_argument("--shard", action="append", required=True)
    p.add_argument("--quantile", type=finite_float, default=0.005)
    p.add_argument("--top-images", type=int, default=8)
    p.add_argument("--cache", default=None, help="also write the activation cache that the threshold merge (and, without --values-only, the tally) of these shards reads")
    p.add_argument("--values-only", action="store_true", help="the cache holds only the values the threshold merge needs (the tally runs the model again)")
    p.add_argument("--out", required=True)

    p = sub.add_parser("dissect-thresholds", help="merge per-shard top activations into exact thresholds")
    p.add_argument("--manifest", required=True)
    p.add_argument("--layers", type=_csv, required=True)
    p.add_argument("--quantile", type=finite_float, default=0.005)
    p.add_argument("--cache", action="append", default=[], help="activation cache of a quantile job (each one; the exact thresholds are refined from them)")
    p.add_argument("--out", required=True)
    p.add_argument("parts", nargs="+")

    p = sub.add_parser("dissect-tally", help="per-shard job: IoU counts at the given thresholds")
    _model_args(p, required=False)
    p.add_argument("--manifest", required=True)
    p.add_argument("--shard", action="append", required=True)
    p.add_argument("--thresholds", required=True)
    p.add_argument("--cache", default=None, help="activation cache of these shards (from dissect-quantiles); the model is then not run")
    p.add_argument("--out", required=True)

    p = sub.add_parser("dissect-gather", help="sum per-shard tallies; write iou.parquet and summary.json")
    p.add_argument("--manifest", required=True)
    p.add_argument("--layers", type=_csv, required=True)
    p.add_argument("--thresholds", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--settings-json", type=json_object, default={})
    p.add_argument("--remove-caches", action="store_true", help="after writing the results, delete activation caches (cache-*.acts) left beside the tally parts (a run killed after a finished tally leaves its cache behind)")
    _scoring_args(p)
    p.add_argument("parts", nargs="+")

    p = sub.add_parser("report", help="render the HTML report from result files")
    p.add_argument("--config", required=True)
    p.add_argument("--results", default="results")
    p.add_argument("--out", required=True)

    from .methods import installed_methods, method_module

    for method in installed_methods():
        # each method registers `cnninterp <method> <step>` and sets `method_run` (a function of args)
        method_module(method, "cli").register(sub)
    return parser


def _scoring_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--denominator", default="original", choices=["original", "lite"])
    p.add_argument("--iou-threshold", type=finite_float, default=0.04)


def _model(args):
    from .models.backbones import load_model

    return load_model(args.model, args.checkpoint, args.init_seed, args.num_classes, args.weights)


def _device(name: str):
    from .train.loop import pick_device

    return pick_device(name)


def limit_threads(threads: int) -> None:
    """Bound this process's compute pools to ``threads``: torch's intra-op pool and every BLAS and
    OpenMP pool (numpy's, SciPy's, scikit-learn's), whether loaded already (threadpoolctl) or later
    (their variables in the environment, which each reads when it loads). Without this a numpy
    matrix product (the gather's permutation null) ran on every core whatever the job had asked
    for: 15 CPU s in 1.2 s of wall time on a 16-core GPU machine."""
    import os
    import sys

    from threadpoolctl import threadpool_limits

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    threadpool_limits(limits=threads)
    if "torch" in sys.modules:  # imported already: its pool has read the environment before
        sys.modules["torch"].set_num_threads(threads)


def run(args) -> None:
    """Execute the parsed command ``args``."""
    if args.threads:
        limit_threads(args.threads)
    cmd = args.command
    if cmd == "train" or cmd.startswith("dissect"):
        from .config import validate_cli_values

        validate_cli_values(cmd, vars(args))
    if getattr(args, "method_run", None) is not None:
        args.method_run(args)
    elif cmd == "validate-config":
        from .atomic import write_json
        from .config import load_config, validate_config

        if bool(args.config) == (args.json is not None):
            raise CnninterpError("validate-config needs config file(s) or --json, not both")
        config = load_config(*args.config) if args.config else validate_config(args.json, "--json")
        if args.out:
            write_json(args.out, config)
        print(f"{' + '.join(args.config) or '--json'}: valid")
    elif cmd == "data":
        _run_data(args)
    elif cmd == "train" and args.train_command == "random-control":
        from .errors import ConfigError
        from .train.random_control import random_control

        if args.init_seed < 0:  # the schema's bound of dissect.models.<m>.init_seed (torch would wrap it)
            raise ConfigError(f"cnninterp train random-control: --init-seed must be >= 0, got {args.init_seed}")

        summary = random_control(args.shards, args.out, arch=args.arch, task=args.task, init_seed=args.init_seed,
                                 batch_size=args.batch_size, bn_images=args.bn_images, preprocess=args.preprocess,
                                 seed=args.seed)
        log.info("random control %s (init seed %d): BatchNorm statistics from %d images", args.arch, args.init_seed,
                 summary["bn_recalibrated_images"])
    elif cmd == "train":
        from .train.baseline import train_baseline

        summary = train_baseline(args.shards, args.out, arch=args.arch, task=args.task, epochs=args.epochs, batch_size=args.batch_size,
                                 lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, preprocess=args.preprocess,
                                 seed=args.seed, device=args.device, bn_images=args.bn_images)
        log.info("trained %s: val accuracy %s", args.arch, summary["val_accuracy"])
    elif cmd == "dissect":
        from .dissect.pipeline import dissect

        summary = dissect(_model(args), args.layers, args.shards, args.out, args.quantile, args.iou_threshold, args.denominator, args.preprocess, args.batch_size, args.top_images, _device(args.device), {"model": args.model, "checkpoint": args.checkpoint}, args.cache, memory_format=args.memory_format)
        for layer, s in summary.items():
            print(f"{layer}: {s['detectors']}/{s['units']} detectors, {s['unique_concepts']} unique concepts")
    elif cmd.startswith("dissect-"):
        _run_dissect_stage(args)
    elif cmd == "report":
        from .report.build import build_report

        build_report(args.config, args.results, args.out)


def _run_data(args) -> None:
    sub = args.data_command
    if sub in ("synth-broden", "synth-scenes"):
        from .data.synthetic_broden import generate_broden, generate_scene_task

        out = Path(args.out)  # a previous output is replaced only once the new one is complete
        if sub == "synth-broden":
            generate_broden(out, args.n_images, args.image_size, args.seed, args.val_fraction, replace=True)
        else:
            rules = {k: getattr(args, k) for k in ("ground_rule", "object_rule", "third_object") if getattr(args, k) is not None}
            summary = generate_scene_task(out, args.n_images, args.image_size, args.seed, args.val_fraction, replace=True, **rules)
            print(json.dumps(summary, sort_keys=True))
    elif sub == "fetch-broden":
        from .data.download import fetch_and_extract

        info = fetch_and_extract(args.url, args.sha256, args.archive, args.out)
        record = {"url": args.url, "sha256": info["sha256"], "verified": info["verified"]}
        if args.info:
            from .atomic import write_json

            write_json(args.info, record)
        print(json.dumps(record))
    elif sub == "shard-broden":
        from .data.broden_shards import convert_broden

        source = dict(args.source)
        if args.source_file:
            source.update(_json_file(args.source_file))
        manifest = convert_broden(args.broden, args.out, args.shard_size, source, args.config_json)
        counts = {k: v["samples"] for k, v in manifest["splits"].items()}
        print(f"wrote shards to {args.out}: {counts}")


def _json_file(path: str) -> dict:
    """The JSON object in the file ``path`` (``report.context.read_json``); DataError naming the file otherwise."""
    from .errors import DataError
    from .report.context import read_json

    value = read_json(path, "--source-file")
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object {{...}}, got {type(value).__name__}")
    return value


def _run_dissect_stage(args) -> None:
    from .data.shards import read_manifest
    from .dissect import engine
    from .dissect.statefile import read_state, write_state
    from .dissect.states import Thresholds

    manifest = read_manifest(Path(args.manifest).parent)
    total = engine.dataset_images(manifest)
    if args.command == "dissect-quantiles":
        part = engine.quantile_tops(_model(args), args.layers, args.shard, total, args.quantile, args.preprocess, args.batch_size, _device(args.device), args.top_images, args.cache, memory_format=args.memory_format, values_only=args.values_only)
        write_state(args.out, part)
    elif args.command == "dissect-thresholds":
        # parts are read one at a time (streamed), the caches once per refinement level
        write_state(args.out, engine.merge_thresholds(args.parts, args.layers, total, args.quantile, args.cache,
                                                      shards=engine.manifest_shards(manifest)))
    elif args.command == "dissect-tally":
        if not args.cache and not args.model:
            raise ConfigError("dissect-tally needs --cache (an activation cache) or --model (to run the model again)")
        thresholds = read_state(args.thresholds, Thresholds)
        model = None if args.cache else _model(args)
        counts = engine.tally(model, args.layers, args.shard, thresholds, manifest, args.preprocess, args.batch_size, _device(args.device), args.cache, memory_format=args.memory_format)
        write_state(args.out, counts)
    elif args.command == "dissect-gather":
        settings = dict(args.settings_json, denominator=args.denominator, iou_threshold=args.iou_threshold, layers=args.layers)
        thresholds = read_state(args.thresholds, Thresholds)
        # the tally parts go in as paths: sum_tallies reads them one at a time (a 1,000-shard
        # run of full Broden would not fit in memory all at once)
        from .dissect.gather import gather, remove_caches

        summary = gather(args.parts, thresholds, manifest, args.layers, args.denominator, args.iou_threshold, args.out, settings)
        for layer, s in summary.items():
            print(f"{layer}: {s['detectors']}/{s['units']} detectors, {s['unique_concepts']} unique concepts")
        if args.remove_caches:
            for path in remove_caches(Path(args.parts[0]).parent):
                print(f"removed leftover activation cache {path}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse ``argv``, run the command, turn known errors into a one-line message (exit 2)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(args)
    except CnninterpError as err:
        print(f"cnninterp {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        # a full disk, a read-only or missing folder: name the file and the reason, no traceback
        where = f" {err.filename}" if err.filename else ""
        hints = {errno.ENOSPC: "free some space", errno.EISDIR: "give a file path"}
        hint = hints.get(err.errno, "check that the folder exists and is writable")
        print(f"cnninterp {args.command}: error: cannot access{where}: {err.strerror or err} ({hint})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
