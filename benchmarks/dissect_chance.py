"""The permutation chance level of whole-image-label detectors on a probe set (issue 11).

Dissects the trained baseline (a checkpoint, by default ``results/models/baseline/model.pt``) and
the random control (config.yaml's ``baseline_random``) on the probe shards (by default the
default run's ``results/shards/broden``) with the engine's stages in one process, then gathers
twice: without the null (``chance_permutations`` 0) and with it, so the null's extra gather time
is measured on its own. Prints, per model and layer, the detectors and the detectors above chance
(per category), and the times, as JSON.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dissect_chance.py --out /tmp/chance
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Parse the arguments, dissect both models, print the JSON record."""
    import torch

    from cnninterp.config import dissect_settings, load_config
    from cnninterp.data.shards import read_manifest, shard_paths
    from cnninterp.dissect import engine
    from cnninterp.dissect.gather import gather
    from cnninterp.models.backbones import load_model, random_model

    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, default=root / "results/shards/broden")
    ap.add_argument("--checkpoint", type=Path, default=root / "results/models/baseline/model.pt")
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--permute-textures", type=int, default=None, metavar="SEED",
                    help="known truth: render the default probe anew with its texture labels shuffled among the texture images "
                         "(benchmarks/default_probe_realism.py's permute_texture_labels) and dissect that instead of --shards")
    ap.add_argument("--out", type=Path, required=True, help="a folder for the results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(root / "config.yaml")
    arch = config["train"]["baseline"]["arch"]
    models = {"baseline": lambda: load_model("checkpoint", args.checkpoint),
              "baseline_random": lambda: random_model(arch, dissect_settings(config, "baseline_random")["init_seed"])}
    if args.permute_textures is not None:
        args.shards = permuted_probe(config, args.out.parent / f"{args.out.name}-probe", args.permute_textures)
    manifest = read_manifest(args.shards)
    paths = shard_paths(args.shards)
    total = engine.dataset_images(manifest)
    record = {"images": total, "permutations": args.permutations, "alpha": args.alpha, "models": {}}
    for name, make in models.items():
        s = dissect_settings(config, name)
        layers, q = s["layers"], s["quantile"]
        start = time.time()
        with tempfile.TemporaryDirectory(dir=args.out.parent if args.out.parent.exists() else None) as tmp:
            cache = Path(tmp) / "acts"
            tops = engine.quantile_tops(make(), layers, paths, total, q, s["preprocess"], s["batch_size"], "cpu", s["top_images"], cache)
            thresholds = engine.merge_thresholds([tops], layers, total, q, [cache], engine.manifest_shards(manifest))
            part = engine.tally(None, layers, paths, thresholds, manifest, s["preprocess"], s["batch_size"], "cpu", cache)
        stages = time.time() - start
        from cnninterp.dissect.statefile import read_state, write_state
        from cnninterp.dissect.states import TallyPart

        args.out.mkdir(parents=True, exist_ok=True)
        start = time.time()
        write_state(args.out / f"{name}-tally.npz", part)
        part = read_state(args.out / f"{name}-tally.npz", TallyPart)
        part_io = (round(time.time() - start, 2), (args.out / f"{name}-tally.npz").stat().st_size)
        times = {}
        summaries = {}
        for p in (0, args.permutations):
            settings = {"layers": layers, "quantile": q, "chance_permutations": p, "chance_alpha": args.alpha, "chance_seed": args.seed}
            start, cpu = time.time(), time.process_time()
            summaries[p] = gather([part], thresholds, manifest, layers, s["denominator"], s["iou_threshold"], args.out / f"{name}-p{p}", settings)
            times[p] = (round(time.time() - start, 2), round(time.process_time() - cpu, 2))
        summary = summaries[args.permutations]
        for layer in layers:  # the null adds keys, never changes the old ones
            old = summaries[0][layer]
            assert all(summary[layer][k] == old[k] for k in ("detectors", "detectors_per_category", "unique_concepts"))
        record["models"][name] = {
            "quantiles+thresholds+tally_s": round(stages, 1),
            "gather_s_without_null (wall, cpu)": times[0],
            "gather_s_with_null (wall, cpu)": times[args.permutations],
            "whole_image_rows": int(part.whole.images),
            "tally_part (write+read s, bytes)": part_io,
            "layers": {layer: {
                "detectors": summary[layer]["detectors"],
                "detectors_above_chance": summary[layer].get("detectors_above_chance"),
                "whole_image_detectors_at_chance": summary[layer].get("whole_image_detectors_at_chance"),
                "per_category": {c: [n, summary[layer].get("detectors_above_chance_per_category", {}).get(c)]
                                 for c, n in summary[layer]["detectors_per_category"].items() if n},
            } for layer in layers},
        }
        tot = record["models"][name]["layers"]
        record["models"][name]["total"] = [sum(v["detectors"] for v in tot.values()), sum(v["detectors_above_chance"] or 0 for v in tot.values())]
        print(json.dumps({name: record["models"][name]}), flush=True)
    print(json.dumps(record, indent=1))


def permuted_probe(config: dict, folder: Path, seed: int) -> Path:
    """Render the default synthetic probe under ``folder``, shuffle its texture labels among the
    texture images (seeded) and shard it; return the shard folder."""
    import importlib.util

    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.synthetic_broden import generate_broden

    spec = importlib.util.spec_from_file_location("default_probe_realism", Path(__file__).with_name("default_probe_realism.py"))
    realism = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(realism)
    syn = config["broden"]["synthetic"]
    generate_broden(folder / "probe", syn["n_images"], syn["image_size"], syn["seed"], syn["val_fraction"])
    realism.permute_texture_labels(folder / "probe" / "index.csv", seed)
    convert_broden(folder / "probe", folder / "shards", config["broden"]["shard_size"], {"kind": "synthetic"}, {})
    return folder / "shards"


if __name__ == "__main__":
    main()
