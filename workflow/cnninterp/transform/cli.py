"""``cnninterp transform <step>``: the digits and objects3d shards, training of the FTL model and its
baseline, evaluation per dataset, and the merge into metrics.json."""

from __future__ import annotations

import argparse

from ..argtypes import finite_float


def register(subparsers) -> None:
    """Add the ``transform`` verb and its steps (data, train, evaluate) to the top-level parser."""
    verb = subparsers.add_parser("transform", help="interpretable transformations (Worrall et al. 2017): FTL encoder-decoder")
    verb.set_defaults(method_run=run)
    sub = verb.add_subparsers(dest="transform_command", required=True)

    p = sub.add_parser("data", help="write the digits shards (scikit-learn's bundled digits, upright; angles drawn at training time)")
    p.add_argument("--out", required=True, help="shard folder, e.g. results/shards/digits")
    p.add_argument("--upsample", type=int, default=2)
    p.add_argument("--pad", type=int, default=4)
    p.add_argument("--test-fraction", type=finite_float, default=0.25)
    p.add_argument("--heldout-start-deg", type=finite_float, default=120.0)
    p.add_argument("--heldout-width-deg", type=finite_float, default=60.0)
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("objects3d-data", help="render the 3-D objects (azimuth stored per view, held-out arc absent from train)")
    p.add_argument("--out", required=True, help="shard folder, e.g. results/shards/objects3d")
    p.add_argument("--objects-train", type=int, default=48)
    p.add_argument("--objects-test", type=int, default=12)
    p.add_argument("--image-size", type=int, default=24)
    p.add_argument("--azimuth-step-deg", type=finite_float, default=10.0)
    p.add_argument("--elevation-deg", type=finite_float, default=30.0)
    p.add_argument("--inplane-range-deg", type=finite_float, default=180.0, help="in-plane rolls are drawn on [-r, r]")
    p.add_argument("--heldout-start-deg", type=finite_float, default=90.0)
    p.add_argument("--heldout-width-deg", type=finite_float, default=60.0)
    p.add_argument("--shard-size", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("train", help="train the FTL encoder-decoder or the θ-input baseline (on digits or objects3d shards)")
    p.add_argument("--shards", required=True)
    p.add_argument("--out", required=True, help="checkpoint path (model.pt); config.json is written beside it")
    p.add_argument("--kind", required=True, choices=["ftl", "baseline"])
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--identity-dim", type=int, default=8)
    p.add_argument("--azimuth-blocks", type=int, default=0, help="2-blocks turned by the azimuth (objects3d: >= 1; digits: 0)")
    p.add_argument("--equivariance-norm", default="latent", choices=["latent", "part"])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=finite_float, default=3e-3)
    p.add_argument("--equivariance-weight", type=finite_float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    p = sub.add_parser("evaluate", help="metrics.json (reconstruction, equivariance, angle recovery, invariant accuracy) and the turn figure data")
    p.add_argument("--shards", required=True)
    p.add_argument("--ftl", required=True, help="the FTL model.pt")
    p.add_argument("--baseline", required=True, help="the baseline model.pt")
    p.add_argument("--out", required=True, help="metrics.json path")
    p.add_argument("--samples", type=int, default=400)
    p.add_argument("--turn-rows", type=int, default=4)
    p.add_argument("--turn-steps", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("evaluate-objects3d", help="objects3d metrics (per factor, seen and held-out azimuths) and the azimuth-turn figure data")
    p.add_argument("--shards", required=True)
    p.add_argument("--ftl", required=True, help="the FTL model.pt (two block groups)")
    p.add_argument("--baseline", required=True, help="the baseline model.pt")
    p.add_argument("--out", required=True, help="objects3d.json path (turn_objects3d.npy is written beside it)")
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--turn-rows", type=int, default=4)
    p.add_argument("--turn-steps", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("merge", help="merge per-dataset metrics files into metrics.json")
    p.add_argument("--inputs", required=True, nargs="+", help="per-dataset metrics (digits.json, objects3d.json)")
    p.add_argument("--out", required=True, help="metrics.json path")


def run(args: argparse.Namespace) -> None:
    """Execute ``cnninterp transform <step>``."""
    from ..errors import ConfigError

    for name in ("upsample", "shard_size", "epochs", "batch_size", "channels", "blocks", "samples", "turn_steps", "turn_rows",
                 "objects_train", "objects_test"):
        if getattr(args, name, 1) < 1:
            raise ConfigError(f"cnninterp transform {args.transform_command}: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.transform_command == "data":
        from ..data.digits import write_digits

        manifest = write_digits(args.out, upsample=args.upsample, pad=args.pad, test_fraction=args.test_fraction,
                                heldout_start_deg=args.heldout_start_deg, heldout_width_deg=args.heldout_width_deg,
                                seed=args.seed, shard_size=args.shard_size)
        print(f"wrote digits shards to {args.out}: " + str({k: v["samples"] for k, v in manifest["splits"].items()}))
    elif args.transform_command == "train":
        from ..data.shards import read_manifest
        from .model import ModelSpec
        from .train import train_model

        size = int(read_manifest(args.shards)["image_size"])
        if args.azimuth_blocks < 0 or args.identity_dim < 0:
            raise ConfigError(f"cnninterp transform train: --azimuth-blocks and --identity-dim must be >= 0, got {args.azimuth_blocks}, {args.identity_dim}")
        spec = ModelSpec(kind=args.kind, image_size=size, channels=args.channels, blocks=args.blocks, identity_dim=args.identity_dim,
                         azimuth_blocks=args.azimuth_blocks)
        summary = train_model(args.shards, args.out, spec, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                              seed=args.seed, device=args.device, equivariance_weight=args.equivariance_weight,
                              equivariance_norm=args.equivariance_norm)
        print(f"trained transform {args.kind}: final train mse {summary['final_mse']:.4f}")
    elif args.transform_command == "evaluate":
        from .evaluate import evaluate

        result = evaluate(args.shards, args.ftl, args.baseline, args.out, samples=args.samples,
                          turn_rows=args.turn_rows, turn_steps=args.turn_steps, seed=args.seed)
        print(f"angle error (deg): {result['angle_error_deg']}")
    elif args.transform_command == "objects3d-data":
        from ..data.objects3d import write_objects3d

        manifest = write_objects3d(args.out, objects_train=args.objects_train, objects_test=args.objects_test, image_size=args.image_size,
                                   azimuth_step_deg=args.azimuth_step_deg, elevation_deg=args.elevation_deg,
                                   heldout_start_deg=args.heldout_start_deg, heldout_width_deg=args.heldout_width_deg,
                                   seed=args.seed, shard_size=args.shard_size, inplane_range_deg=args.inplane_range_deg)
        print(f"wrote objects3d shards to {args.out}: " + str({k: v["samples"] for k, v in manifest["splits"].items()}))
    elif args.transform_command == "evaluate-objects3d":
        from .evaluate3d import evaluate_objects3d

        result = evaluate_objects3d(args.shards, args.ftl, args.baseline, args.out, samples=args.samples,
                                    turn_rows=args.turn_rows, turn_steps=args.turn_steps, seed=args.seed)
        print(f"angle error (deg): {result['angle_error_deg']}")
    elif args.transform_command == "merge":
        from .merge import merge_metrics

        merged = merge_metrics(args.inputs, args.out)
        print(f"wrote {args.out}: datasets {sorted(merged['reconstruction_mse'])}")
