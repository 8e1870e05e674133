"""Seconds per training epoch of the steering models on random frames, by batch size and thread count.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/attention_speed.py --threads 2 [--height 80 --width 160 --sequences 128]

Builds each model as the chain does (attention: coords, located cells, context standardisation;
cnn: coords), times forward + backward + Adam steps on random frames (B, T, 3, H, W) after two warm-up
steps, and prints wall and CPU seconds scaled to one epoch of ``--sequences`` sequences.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    import torch

    from cnninterp.attention.model import ModelSpec, attention_regularizer, build_model, steering_loss

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--height", type=int, default=80)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--seq-len", type=int, default=8)
    ap.add_argument("--sequences", type=int, default=128)
    ap.add_argument("--batches", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--timed-sequences", type=int, default=32, help="sequences timed per setting")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for kind in ("attention", "cnn"):
        for bs in args.batches:
            spec = ModelSpec(kind=kind, height=args.height, width=args.width, coords=True,
                             located=kind == "attention", context_norm=kind == "attention")
            model = build_model(spec)
            opt = torch.optim.Adam(model.parameters(), 1e-3)
            x, y = torch.rand(bs, args.seq_len, 3, args.height, args.width), torch.randn(bs, args.seq_len)
            steps = max(1, args.timed_sequences // bs)
            for i in range(2 + steps):
                if i == 2:
                    wall, cpu = time.perf_counter(), time.process_time()
                out = model(x)
                loss = steering_loss(out["pred"], y) + (0.1 * attention_regularizer(out["alpha"]) if "alpha" in out else 0.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
            scale = args.sequences / (steps * bs)
            print(f"threads {args.threads} {kind} batch {bs}: epoch of {args.sequences} sequences "
                  f"wall {(time.perf_counter() - wall) * scale:.1f} s, cpu {(time.process_time() - cpu) * scale:.1f} s", flush=True)


if __name__ == "__main__":
    main()
