"""``cnninterp multiview <step>``: the multiview shards, training of the three models, evaluation."""

from __future__ import annotations

import argparse

from ..argtypes import finite_float


def register(subparsers) -> None:
    """Add the ``multiview`` verb and its steps (data, train, evaluate) to the top-level parser."""
    verb = subparsers.add_parser("multiview", help="camera-disentangled multi-view pose (Remelli et al. 2020): canonical fusion + DLT")
    verb.set_defaults(method_run=run)
    sub = verb.add_subparsers(dest="multiview_command", required=True)

    p = sub.add_parser("data", help="write the multiview shards (synthetic skeletons and cameras, or a Human3.6M-style root)")
    p.add_argument("--out", required=True, help="shard folder, e.g. results/shards/multiview")
    p.add_argument("--source", default="synthetic", choices=["synthetic", "h36m"])
    p.add_argument("--h36m-root", default=None, help="with --source h36m: the root of the S<n>/<action>/imageSequence layout")
    p.add_argument("--train-subjects", nargs="*", default=["S1", "S5", "S6", "S7", "S8"])
    p.add_argument("--test-subjects", nargs="*", default=["S9", "S11"])
    p.add_argument("--train", type=int, default=1200, help="synthetic training poses")
    p.add_argument("--test", type=int, default=300, help="synthetic held-out poses (test and unseen-camera splits)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--heldout-view", type=int, default=3)
    p.add_argument("--heldout-azimuth-deg", type=finite_float, default=0.0)
    p.add_argument("--occluder-probability", type=finite_float, default=0.0)
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--splits", nargs="+", default=["train", "test", "unseen"], choices=["train", "test", "unseen"],
                   help="splits to write (default all; a Human3.6M root has train and test); the workflow writes train and "
                        "test (+ unseen) into two folders")

    p = sub.add_parser("train", help="train the baseline, fusion or canonical model")
    p.add_argument("--shards", required=True)
    p.add_argument("--out", required=True, help="checkpoint path (model.pt); config.json is written beside it")
    p.add_argument("--kind", required=True, choices=["baseline", "fusion", "canonical"])
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--points", type=int, default=32)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=finite_float, default=2e-3)
    p.add_argument("--weight-3d", type=finite_float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    p = sub.add_parser("evaluate", help="metrics.json (MPJPE per model, unseen camera, DLT timing, novel views) and figures")
    p.add_argument("--shards", required=True, help="the shards with the test (and unseen) split")
    p.add_argument("--train-shards", default=None,
                   help="the shards the models were trained on, if another folder (checked: digest and settings)")
    p.add_argument("--baseline", required=True)
    p.add_argument("--fusion", required=True)
    p.add_argument("--canonical", required=True)
    p.add_argument("--out", required=True, help="metrics.json path")
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--dlt-batch", type=int, default=512)
    p.add_argument("--dlt-repeat", type=int, default=10)
    p.add_argument("--figure-rows", type=int, default=3)


def data_args(data: dict, seed: int, split: str) -> list:
    """The data step's options for one of the workflow's two shard folders (``rules/multiview.smk``):
    ``split`` "train" (the models' input) or "eval" (test, and for the synthetic rig the unseen
    camera). Only the settings of the config block ``multiview.data`` (``data``, defaults filled in)
    that change that folder's samples, so that an evaluation-only setting does not key the training
    data: synthetic, the folder's pose count, the rig and the occluders (the moved camera for eval);
    ``h36m``, the root and that split's subjects. (image_size and shard_size are the rule's own
    options.) A list of str / numbers."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be train or eval, got {split!r}")
    if data["source"] == "h36m":
        h36m = data["h36m"]
        subjects = "train" if split == "train" else "test"
        return ["--source", "h36m", f"--h36m-root={h36m['root']}", "--splits", subjects, f"--{subjects}-subjects", *h36m[f"{subjects}_subjects"]]
    rig = ["--views", data["views"], "--occluder-probability", data["occluder_probability"], "--seed", seed]
    if split == "train":
        return ["--splits", "train", "--train", data["train"], *rig]
    return ["--splits", "test", "unseen", "--test", data["test"], "--heldout-view", data["heldout_view"],
            "--heldout-azimuth-deg", data["heldout_azimuth_deg"], *rig]


def run(args: argparse.Namespace) -> None:
    """Execute ``cnninterp multiview <step>``."""
    from ..errors import ConfigError

    for name in ("train", "test", "image_size", "shard_size", "epochs", "batch_size", "channels", "points", "hidden",
                 "samples", "dlt_batch", "dlt_repeat", "figure_rows"):
        if getattr(args, name, 1) < 1:
            raise ConfigError(f"cnninterp multiview {args.multiview_command}: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.multiview_command == "data":
        if args.source == "h36m":
            from ..data.h36m import write_h36m

            if not args.h36m_root:
                raise ConfigError("cnninterp multiview data --source h36m needs --h36m-root")
            # the default (all three) writes the root whole; the unseen-camera split is the synthetic rig's
            splits = ["train", "test"] if sorted(args.splits) == ["test", "train", "unseen"] else args.splits
            if "unseen" in splits:
                raise ConfigError("cnninterp multiview data --splits unseen: a Human3.6M root has no unseen-camera split "
                                  "(its cameras are fixed); write train and/or test")
            manifest = write_h36m(args.h36m_root, args.out, train_subjects=args.train_subjects, test_subjects=args.test_subjects,
                                  image_size=args.image_size, shard_size=args.shard_size, splits=splits)
        else:
            from ..data.multiview import MultiviewConfig, write_multiview

            if not 0.0 <= args.occluder_probability <= 1.0:
                raise ConfigError(f"--occluder-probability must lie in [0, 1], got {args.occluder_probability}")
            cfg = MultiviewConfig(train=args.train, test=args.test, image_size=args.image_size, views=args.views,
                                  heldout_view=args.heldout_view, heldout_azimuth_deg=args.heldout_azimuth_deg,
                                  occluder_probability=args.occluder_probability, seed=args.seed)
            manifest = write_multiview(args.out, cfg, shard_size=args.shard_size, splits=args.splits)
        print(f"wrote multiview shards to {args.out}: " + str({k: v["samples"] for k, v in manifest["splits"].items()}))
    elif args.multiview_command == "train":
        from ..data.multiview import manifest_info
        from .model import ModelSpec
        from .train import train_model

        info = manifest_info(args.shards)
        spec = ModelSpec(kind=args.kind, image_size=info["image_size"], views=info["views"], joints=info["joints"],
                         channels=args.channels, points=args.points, hidden=args.hidden)
        summary = train_model(args.shards, args.out, spec, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                              weight_3d=args.weight_3d, seed=args.seed, device=args.device)
        print(f"trained multiview {args.kind}: final train MPJPE {summary['final_mpjpe_mm']:.1f} mm")
    elif args.multiview_command == "evaluate":
        from .evaluate import evaluate

        result = evaluate(args.shards, {"baseline": args.baseline, "fusion": args.fusion, "canonical": args.canonical},
                          args.out, train_shards=args.train_shards, samples=args.samples, dlt_batch=args.dlt_batch, dlt_repeat=args.dlt_repeat,
                          figure_rows=args.figure_rows)
        print(f"MPJPE (mm): {result['mpjpe_mm']}; unseen camera: {result['mpjpe_mm_unseen_camera']}")
