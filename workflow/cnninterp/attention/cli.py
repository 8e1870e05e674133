"""``cnninterp attention <step>``: the driving shards, training of the three steering models, evaluation."""

from __future__ import annotations

import argparse

from ..argtypes import finite_float


BLOCKS = ("data", "model", "train", "eval")  # the attention schema's blocks the steps' options come from


def register(subparsers) -> None:
    """Add the ``attention`` verb and its steps (data, train, evaluate) to the top-level parser;
    option defaults are the config schema's, so that a step run by hand does what the config's
    defaults do (they kept the 40x80 settings after the config's moved to 64x128)."""
    from ..config import method_defaults

    d = method_defaults("attention", BLOCKS)
    data, model, train, ev = d["data"], d["model"], d["train"], d["eval"]
    verb = subparsers.add_parser("attention", help="causal attention for steering (Kim & Canny 2017)")
    verb.set_defaults(method_run=run)
    sub = verb.add_subparsers(dest="attention_command", required=True)

    p = sub.add_parser("data", help="write the driving shards (synthetic roads, or a Udacity / comma.ai folder)")
    p.add_argument("--out", required=True, help="shard folder, e.g. results/shards/driving/train")
    p.add_argument("--split", default="both", choices=["train", "test", "both"],
                   help="write this split only (each split in its own folder, so that training depends on its split alone), or both")
    p.add_argument("--source", default="synthetic", choices=["synthetic", "udacity", "comma"])
    p.add_argument("--path", default="", help="the Udacity or comma.ai folder")
    p.add_argument("--height", type=int, default=data["height"])
    p.add_argument("--width", type=int, default=data["width"])
    p.add_argument("--seq-len", type=int, default=data["seq_len"])
    p.add_argument("--train-sequences", type=int, default=data["train_sequences"])
    p.add_argument("--test-sequences", type=int, default=data["test_sequences"])
    p.add_argument("--distractors", type=int, default=data["distractors"])
    p.add_argument("--lateral-scale", type=finite_float, default=data["lateral_scale"],
                   help="synthetic: multiply the road's drift amplitudes (offset, heading, curvature) by this")
    p.add_argument("--ramp-m", type=finite_float, default=data["ramp_m"],
                   help="synthetic: metres outside the look-ahead band over which the road blends into the independent outer one (0: at once)")
    p.add_argument("--pitch-px", type=finite_float, default=data["pitch_px"],
                   help="synthetic: drift amplitude (pixels) of the horizon row, the camera's pitch (0: fixed camera)")
    p.add_argument("--lookahead-m", type=finite_float, default=data["lookahead_m"])
    p.add_argument("--band", type=finite_float, default=data["band"])
    p.add_argument("--outer-road", action=argparse.BooleanOptionalAction, default=data["outer_road"],
                   help="outside the look-ahead band the road follows an independent cubic (the band is then the only cause)")
    p.add_argument("--test-every", type=int, default=data["test_every"])
    p.add_argument("--max-gap-s", type=finite_float, default=data["max_gap_s"])
    p.add_argument("--shard-size", type=int, default=data["shard_size"])
    p.add_argument("--seed", type=int, default=d["seed"])

    p = sub.add_parser("train", help="train one steering model (attention with or without the regulariser, or the cnn)")
    p.add_argument("--shards", required=True)
    p.add_argument("--out", required=True, help="checkpoint path (model.pt); config.json is written beside it")
    p.add_argument("--kind", required=True, choices=["attention", "cnn"])
    p.add_argument("--reg-weight", type=finite_float, default=0.0, help="lambda of the attention regulariser")
    p.add_argument("--hidden", type=int, default=model["hidden"])
    p.add_argument("--coords", action=argparse.BooleanOptionalAction, default=model["coords"], help="append each feature cell's row and column to its features")
    p.add_argument("--located", action=argparse.BooleanOptionalAction, default=model["located"],
                   help="attention model: each cell's vector is [x, x*col, x*row], so the context carries where it looked")
    p.add_argument("--context-norm", action=argparse.BooleanOptionalAction, default=model["context_norm"],
                   help="attention model: standardise the context by running estimates before the LSTM and the output layer")
    p.add_argument("--logit-scale", type=finite_float, default=model["logit_scale"], help="attention logits' scale (its start with --learn-scale)")
    p.add_argument("--learn-scale", action=argparse.BooleanOptionalAction, default=model["learn_scale"], help="learn the attention logits' scale")
    p.add_argument("--uniform-start", action=argparse.BooleanOptionalAction, default=model["uniform_start"],
                   help="attention model: start the attention exactly uniform (its last layer at zero)")
    p.add_argument("--clip-grad", type=finite_float, default=train["clip_grad"], help="clip each step's gradient to this global L2 norm (0: off)")
    p.add_argument("--epochs", type=int, default=train["epochs"])
    p.add_argument("--batch-size", type=int, default=train["batch_size"])
    p.add_argument("--lr", type=finite_float, default=train["lr"])
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    p = sub.add_parser("evaluate", help="metrics.json (mae, attention_on_cause, causal_filtering, deletion) and figure data")
    p.add_argument("--shards", required=True, help="the shard folder holding the test split")
    p.add_argument("--train-shards", default=None,
                   help="the shard folder the models were trained on (default: --shards); its manifest must be the models' and "
                        "drawn with the same settings as the test split's")
    p.add_argument("--attention", required=True, help="model.pt of the attention model (lambda > 0)")
    p.add_argument("--attention-no-reg", required=True, help="model.pt of the attention model with lambda = 0")
    p.add_argument("--cnn", required=True, help="model.pt of the cnn baseline")
    p.add_argument("--out", required=True, help="metrics.json path")
    p.add_argument("--filter-sequences", type=int, default=ev["filter_sequences"])
    p.add_argument("--level", type=finite_float, default=ev["level"])
    p.add_argument("--sigma", type=finite_float, default=ev["sigma"])
    p.add_argument("--threshold", type=finite_float, default=ev["threshold"])
    p.add_argument("--cause-dilation", type=int, default=ev["cause_dilation"])
    p.add_argument("--strip-frames", type=int, default=ev["strip_frames"])
    p.add_argument("--seed", type=int, default=d["seed"])


def data_args(data: dict, seed: int, split: str) -> list:
    """The data step's source options for one split (``rules/attention.smk``): the settings of the
    config block ``attention.data`` (``data``, defaults filled in) that change that split's
    sequences, and no other, so that the train split's job, which the three trainings depend on, is
    not keyed by the test split's size. Synthetic: the split's own count and the generator's
    settings. Real sources (udacity, comma): the folder and the split rule, which decides which
    sequences train (``test_every``; Udacity's ``max_gap_s`` cuts the pieces), for both splits.
    (height, width, seq_len and shard_size are the rule's own options.) A list of str / numbers."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    if data["source"] == "synthetic":
        return [f"--{split}-sequences", data[f"{split}_sequences"], "--distractors", data["distractors"],
                "--lookahead-m", data["lookahead_m"], "--band", data["band"], "--lateral-scale", data["lateral_scale"],
                "--pitch-px", data["pitch_px"], "--seed", seed] + (
                    # the ramp is where the outer road takes over: without one it changes no sequence
                    ["--outer-road", "--ramp-m", data["ramp_m"]] if data["outer_road"] else ["--no-outer-road"])
    return [f"--path={data['path']}", "--test-every", data["test_every"]] + (
        ["--max-gap-s", data["max_gap_s"]] if data["source"] == "udacity" else [])


SECTIONS = {"data": ("data",), "train": ("model", "train"), "evaluate": ("eval",)}  # the schema blocks a step's options share


def check_ranges(command: str, values: dict) -> None:
    """Check a step's option values against the bounds of the attention schema's blocks (``SECTIONS``)
    and its seed, as the config is checked (``config.validate_cli_values``). ``reg_weight`` is left
    out: the config's λ is > 0, the step trains the λ = 0 model too. ConfigError naming the option."""
    from ..config import load_schema, validate_cli_values

    schema = load_schema()["properties"]["attention"]["properties"]
    props = {"seed": schema["seed"]}
    for section in SECTIONS[command]:
        props.update(schema[section]["properties"])
    props.pop("reg_weight", None)
    validate_cli_values(f"attention {command}", values, props, " (the bounds of workflow/schemas/attention.schema.yaml)")


POSITIVE = ("height", "width", "seq_len", "train_sequences", "test_sequences", "test_every", "shard_size", "epochs",
            "batch_size", "hidden", "filter_sequences", "strip_frames")


def run(args: argparse.Namespace) -> None:
    """Execute ``cnninterp attention <step>``."""
    from ..errors import ConfigError

    if args.attention_command == "train" and (args.logit_scale <= 0 or args.clip_grad < 0):
        raise ConfigError(f"cnninterp attention train: --logit-scale must be > 0 and --clip-grad >= 0, got {args.logit_scale} and {args.clip_grad}")
    for name in POSITIVE:
        if getattr(args, name, 1) < 1:
            raise ConfigError(f"cnninterp attention {args.attention_command}: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    check_ranges(args.attention_command, vars(args))
    if args.attention_command == "data" and args.source == "synthetic":  # the schema bounds each alone (check_ranges)
        from ..config import pitch_error

        if (why := pitch_error(args.pitch_px, args.height)) is not None:
            raise ConfigError(f"cnninterp attention data: --pitch-px {why}; give --pitch-px for a frame this small")
    if args.attention_command == "data":
        manifest = write_data(args)
        print(f"wrote driving shards to {args.out}: " + str({k: v["samples"] for k, v in manifest["splits"].items()}))
    elif args.attention_command == "train":
        from .train import train_model

        summary = train_model(args.shards, args.out, args.kind, args.reg_weight, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, seed=args.seed, device=args.device, hidden=args.hidden, coords=args.coords,
                              located=args.located, context_norm=args.context_norm, logit_scale=args.logit_scale,
                              learn_scale=args.learn_scale, clip_grad=args.clip_grad,
                              uniform_start=args.uniform_start)
        print(f"trained attention {args.kind} (lambda {args.reg_weight}): final train MAE {summary['final_mae_std']:.4f} target std")
    elif args.attention_command == "evaluate":
        from .evaluate import evaluate

        models = {"attention": args.attention, "attention_no_reg": args.attention_no_reg, "cnn": args.cnn}
        result = evaluate(args.shards, models, args.out, filter_sequences=args.filter_sequences, level=args.level,
                          sigma=args.sigma, threshold=args.threshold, cause_dilation=args.cause_dilation,
                          strip_frames=args.strip_frames, seed=args.seed, train_shards=args.train_shards)
        print(f"mae: {result['mae']}; attention_on_cause: {result.get('attention_on_cause')}")


def write_data(args: argparse.Namespace) -> dict:
    """The ``data`` step: synthetic roads, or one of the real readers, into shards at ``args.out``
    (``args.split``: train, test, or both into one folder)."""
    from ..data import driving
    from ..errors import ConfigError

    splits = driving.SPLITS if args.split == "both" else (args.split,)
    if args.source == "synthetic":
        camera = driving.Camera(height=args.height, width=args.width, lookahead=args.lookahead_m, band=args.band)
        spec = driving.RoadSpec(camera=camera, seq_len=args.seq_len, distractors=args.distractors, outer=args.outer_road,
                                   lateral_scale=args.lateral_scale, pitch_px=args.pitch_px, ramp_m=args.ramp_m)
        return driving.generate_driving(args.out, spec, args.train_sequences, args.test_sequences, seed=args.seed,
                                        shard_size=args.shard_size, splits=splits)
    if not args.path:
        raise ConfigError(f"attention.data.source is {args.source!r} but attention.data.path is not set")
    if args.source == "udacity":
        recordings = driving.read_udacity(args.path, args.height, args.width, max_gap_s=args.max_gap_s)
    else:
        recordings = driving.read_comma(args.path, args.height, args.width)
    source = {"kind": args.source, "path": str(args.path)}
    if args.source == "udacity":  # it cuts the pieces, so it changes the sequences of both splits
        source["max_gap_s"] = args.max_gap_s
    return driving.convert_recordings(recordings, args.out, args.seq_len, args.test_every, source, shard_size=args.shard_size,
                                      splits=splits)
