"""``cnninterp icnn <step>``: the parts shards (and probe set), training of both networks, evaluation."""

from __future__ import annotations

import argparse

from ..argtypes import finite_float


def register(subparsers) -> None:
    """Add the ``icnn`` verb and its steps (data, train, evaluate) to the top-level parser."""
    verb = subparsers.add_parser("icnn", help="interpretable CNNs (Zhang, Wu, Zhu 2018): part templates and the filter loss")
    verb.set_defaults(method_run=run)
    sub = verb.add_subparsers(dest="icnn_command", required=True)

    p = sub.add_parser("data", help="write the parts shards (train/test) and the dissection probe set (synthetic, or from a CUB-200-2011 folder)")
    p.add_argument("--out", required=True, help="shard folder, e.g. results/shards/parts")
    p.add_argument("--probe-out", required=True, help="probe shard folder for dissection, e.g. results/shards/parts_probe")
    p.add_argument("--train-images", type=int, default=2000)
    p.add_argument("--test-images", type=int, default=400)
    p.add_argument("--probe-images", type=int, default=200)
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--positive-fraction", type=finite_float, default=0.5)
    p.add_argument("--shard-size", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--source", default="synthetic", choices=["synthetic", "cub"],
                   help="synthetic objects of five known parts, or the birds of a CUB-200-2011 folder (--cub-root) against negatives")
    p.add_argument("--cub-root", default="", help="the CUB_200_2011 folder (with --source cub); --train-images/--test-images are then not used")
    p.add_argument("--disc-radius", type=finite_float, default=3.0, help="with --source cub: radius (output pixels) of each visible part's disc mask")
    p.add_argument("--negatives-root", default="",
                   help="with --source cub: a folder of negative images (even positions train, odd test); empty: synthetic cluttered backgrounds")

    p = sub.add_parser("train", help="train the interpretable network or the identical ordinary CNN")
    p.add_argument("--shards", required=True)
    p.add_argument("--out", required=True, help="checkpoint path (model.pt); config.json is written beside it")
    p.add_argument("--kind", required=True, choices=["icnn", "cnn"])
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--filters", type=int, default=16)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=finite_float, default=3e-3)
    p.add_argument("--filter-weight", type=finite_float, default=3.0, help="weight of the filter loss (−MI) in the interpretable network's loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    p = sub.add_parser("evaluate", help="metrics.json: location instability, accuracy, dissection of both top layers; figure data")
    p.add_argument("--shards", required=True)
    p.add_argument("--probe", required=True, help="probe shard folder (parts masks as the 'part' category)")
    p.add_argument("--icnn", required=True, help="the interpretable network's model.pt")
    p.add_argument("--cnn", required=True, help="the ordinary network's model.pt")
    p.add_argument("--out", required=True, help="metrics.json path")
    p.add_argument("--top-images", type=int, default=100)
    p.add_argument("--quantile", type=finite_float, default=0.005)
    p.add_argument("--iou-threshold", type=finite_float, default=0.04)
    p.add_argument("--figure-rows", type=int, default=3)
    p.add_argument("--figure-cols", type=int, default=6)


def run(args: argparse.Namespace) -> None:
    """Execute ``cnninterp icnn <step>``."""
    from ..errors import ConfigError

    for name in ("train_images", "test_images", "probe_images", "shard_size", "epochs", "batch_size", "channels", "filters",
                 "top_images", "figure_rows", "figure_cols"):
        if getattr(args, name, 1) < 1:
            raise ConfigError(f"cnninterp icnn {args.icnn_command}: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.icnn_command == "data" and args.source == "cub":
        from ..data.cub import check_cub_settings, write_cub_parts

        check_cub_settings(args.cub_root, args.negatives_root, "--cub-root", "--negatives-root")
        manifest = write_cub_parts(args.cub_root, args.out, args.probe_out, image_size=args.image_size, disc_radius=args.disc_radius,
                                   positive_fraction=args.positive_fraction, probe_images=args.probe_images, seed=args.seed,
                                   shard_size=args.shard_size, negatives_root=args.negatives_root)
        print(f"wrote CUB bird/negative parts shards to {args.out}: " + str({k: v["samples"] for k, v in manifest["splits"].items()})
              + f"; probe set {args.probe_out}")
    elif args.icnn_command == "data":
        from ..data.parts import write_parts

        kw = dict(image_size=args.image_size, positive_fraction=args.positive_fraction, shard_size=args.shard_size)
        manifest = write_parts(args.out, splits={"train": args.train_images, "test": args.test_images}, seed=args.seed, **kw)
        probe = write_parts(args.probe_out, splits={"probe": args.probe_images}, seed=args.seed + 1, **kw)
        print(f"wrote parts shards to {args.out}: " + str({k: v["samples"] for k, v in manifest["splits"].items()})
              + f"; probe set {args.probe_out}: {probe['splits']['probe']['samples']} images")
    elif args.icnn_command == "train":
        from ..data.shards import read_manifest
        from .model import NetSpec
        from .train import train_net

        manifest = read_manifest(args.shards)
        spec = NetSpec(interpretable=args.kind == "icnn", image_size=int(manifest["image_size"]), channels=args.channels,
                       filters=args.filters, num_classes=len(manifest["classes"]))
        summary = train_net(args.shards, args.out, spec, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            filter_weight=args.filter_weight, seed=args.seed, device=args.device)
        print(f"trained icnn {args.kind}: final train accuracy {summary['final_accuracy']:.3f}")
    elif args.icnn_command == "evaluate":
        from .evaluate import evaluate

        result = evaluate(args.shards, args.probe, {"icnn": args.icnn, "cnn": args.cnn}, args.out, top_images=args.top_images,
                          quantile=args.quantile, iou_threshold=args.iou_threshold, figure_rows=args.figure_rows,
                          figure_cols=args.figure_cols)
        print(f"location instability: {result['location_instability']}; accuracy: {result['accuracy']}")
