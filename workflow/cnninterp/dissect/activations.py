"""Capture named layers' activations of any torch.nn.Module while streaming Broden shards."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..data.broden_shards import iter_broden
from ..data.preprocess import to_tensor
from ..errors import DataError, ModelError
from ..models.formats import torch_memory_format
from ..models.precision import ieee_float32


class _Enough(Exception):
    """Raised by the last hook to stop a forward pass once every asked layer is captured."""


class LayerCapture:
    """Forward hooks on named modules (as ``model.named_modules()`` spells them, nested included).

    ``run(x)`` returns {layer name: activation tensor (B, U, h, w) float32}, stopping the forward
    pass as soon as every layer has been seen. The first ``run`` goes through the whole forward
    pass instead, so that a module called more than once per pass (torchvision's BasicBlock
    reuses its ``relu``), whose maps would be those of its first or last call depending on the
    layer list, raises ModelError even when its second call comes after the last asked layer.
    """

    def __init__(self, model, layers: list[str], memory_format: str = "contiguous"):
        modules = dict(model.named_modules())
        missing = [name for name in layers if name not in modules or name == ""]
        if missing:
            names = [n for n in modules if n]
            raise ModelError(f"model has no layer(s) {', '.join(missing)}; its layers are: {', '.join(names)}")
        self.model, self.layers = model, list(layers)
        self.memory_format = torch_memory_format(model, memory_format)
        model.to(memory_format=self.memory_format)
        self._out: dict = {}
        self._running = False
        # False until a first run has gone through the whole forward pass without a repeat call of an
        # asked layer: that run does not stop at the last asked layer, later ones do
        self._checked = False
        self._handles = [modules[name].register_forward_hook(self._hook(name)) for name in self.layers]

    def _hook(self, name):
        import torch

        def hook(module, inputs, output):
            if not self._running:  # another caller's forward pass: not ours to capture or stop
                return
            if name in self._out:
                parent = name.rsplit(".", 1)[0] if "." in name else None
                hint = f"e.g. its parent {parent}" if parent else "e.g. the block that calls it"
                raise ModelError(f"layer {name} runs more than once in a forward pass (one module called at several places), so its maps "
                                 f"are ambiguous; ask for a layer that runs once, {hint}")
            if not hasattr(output, "dim") or output.dim() != 4:
                shape = tuple(getattr(output, "shape", ()))
                raise ModelError(f"layer {name} outputs shape {shape}; dissection needs (batch, units, height, width) maps")
            # always a copy, in NCHW order whatever format the model ran in: a later in-place op
            # (ReLU(inplace=True), `out += identity`) would otherwise overwrite the captured maps
            # when the forward pass goes on to a later asked layer (a copy of the hooked maps only,
            # measured at a few ms per batch against the ~30% the channels-last forward saves)
            self._out[name] = output.detach().to(torch.float32, memory_format=torch.contiguous_format, copy=True)
            if len(self._out) == len(self.layers) and self._checked:
                raise _Enough

        return hook

    def run(self, x) -> dict:
        """Forward ``x`` (B, 3, H, W) float32 and return {layer: (B, U, h, w) float32 tensor}."""
        import torch

        self._out = {}
        self._running = True
        try:
            with torch.inference_mode():
                self.model(x.contiguous(memory_format=self.memory_format))
        except _Enough:
            pass
        except ModelError:
            raise
        except (RuntimeError, ValueError, AssertionError) as err:
            if not self._checked and len(self._out) == len(self.layers):
                # the checking pass failed after every asked layer ran (e.g. a classifier head
                # that does not take maps this small): what an early stop would have skipped
                pass
            else:
                # e.g. inception_v3 / vit_b_16 on images smaller than they accept
                raise ModelError(
                    f"{type(self.model).__name__} failed on a batch of shape {tuple(x.shape)} (images {x.shape[-2]}x{x.shape[-1]} px): "
                    f"{str(err).splitlines()[0]}; use images of the size the model expects"
                ) from None
        finally:
            self._running = False
        if len(self._out) != len(self.layers):
            lost = [n for n in self.layers if n not in self._out]
            raise ModelError(f"layer(s) {', '.join(lost)} never ran during the forward pass")
        self._checked = True
        return self._out

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_finite(acts: dict, keys: list[str]) -> None:
    """Raise ModelError if any activation is NaN or infinite, naming the layer and the image keys.

    One sum per layer screens the batch (any NaN or infinity makes it non-finite); only a
    non-finite sum, which large finite values can also give, pays for the per-image check.
    """
    import torch

    for name, a in acts.items():
        if bool(torch.isfinite(a.sum())):
            continue
        bad = ~torch.isfinite(a).flatten(1).all(1)
        if not bool(bad.any()):
            continue
        which = [keys[i] for i in torch.nonzero(bad).flatten().tolist()][:5]
        raise ModelError(f"layer {name} produced NaN or infinite activations on image(s) {', '.join(which)}; check the checkpoint and preprocessing")


# batches decoded ahead of the model (measured in benchmarks/RESULTS.md, "Decoding overlapped")
PREFETCH_DEPTH = 2


def iter_batches(paths, batch_size: int) -> Iterator[dict]:
    """Yield batches of decoded Broden samples whose image and segmentation sizes agree.

    Each batch: ``keys`` [str], ``images`` uint8 (B, H, W, 3), ``seg`` uint16 (B, L, sh, sw)
    (layers padded with 0), ``samples`` (the decoded samples). DataError if a shard is empty, or
    naming the image and its shard if an image's size differs from the first image's (a layer's
    maps would have several sizes, which its thresholds and top images cannot hold).
    """
    items: list[dict] = []
    first = None  # (image size, key, shard) of the first image
    for path in paths:
        for sample in iter_broden([path]):
            size = sample["image"].shape[:2]
            if first is None:
                first = (size, sample["key"], path)
            elif size != first[0]:
                raise DataError(f"images of different sizes: image {sample['key']!r} of shard {path} is {size[0]}x{size[1]} px, "
                                f"image {first[1]!r} of shard {first[2]} is {first[0][0]}x{first[0][1]} px; resize the probe set to one size")
            if items and sample["seg"].shape[1:] != items[0]["seg"].shape[1:]:
                yield collate(items)
                items = []
            items.append(sample)
            if len(items) == batch_size:
                yield collate(items)
                items = []
    if items:
        yield collate(items)


def collate(items: list[dict]) -> dict:
    """Stack decoded samples into a batch (see ``iter_batches``); ``images`` only if they were decoded."""
    depth = max(s["seg"].shape[0] for s in items)
    sh, sw = items[0]["seg"].shape[1:]
    seg = np.zeros((len(items), depth, sh, sw), np.uint16)
    for i, s in enumerate(items):
        seg[i, : s["seg"].shape[0]] = s["seg"]
    batch = {"keys": [s["key"] for s in items], "seg": seg, "samples": items}
    if "image" in items[0]:
        batch["images"] = np.stack([s["image"] for s in items])
    return batch


def activation_batches(model, layers: list[str], paths, preset: str, batch_size: int, device, desc: str = "forward", check: bool = True, prefetch_depth: int = PREFETCH_DEPTH, memory_format: str = "auto") -> Iterator[tuple[dict, dict]]:
    """Stream shards through ``model`` (in eval mode on ``device``) with hooks on ``layers``.

    Yields ``(batch, acts)``: the batch of ``iter_batches`` and {layer: float32 (B, U, h, w)}.
    Reading, decoding and preprocessing of the next ``prefetch_depth`` batches run in a
    background thread while the model computes (0: serially; same batches in the same order).
    The model runs in ``memory_format`` (``torch_memory_format``); the maps are NCHW either way.
    On CUDA it runs in IEEE float32, not TF32 (``ieee_float32``), so thresholds and counts match the
    CPU's up to float32 rounding.
    With ``check``, NaN or infinite activations raise ModelError. Hooks are removed on exit,
    also when the consumer stops early or raises.
    """
    from tqdm import tqdm

    from ..data.prefetch import prefetch

    import torch

    device = torch.device(device)
    model.to(device).eval()
    # for CUDA the prefetch thread also pins each batch, so its copy runs asynchronously
    pin = device.type == "cuda"
    prepared = ((batch, _pinned(batch_tensor(batch, preset, "cpu"), pin)) for batch in iter_batches(paths, batch_size))
    with ieee_float32(), LayerCapture(model, layers, memory_format) as capture:
        for batch, images in tqdm(prefetch(prepared, prefetch_depth), desc=desc, unit="batch", mininterval=2, disable=None):
            acts = capture.run(images.to(device, non_blocking=pin))
            if check:
                check_finite(acts, batch["keys"])
            yield batch, acts


def _pinned(tensor, pin: bool):
    """``tensor`` in page-locked host memory when ``pin`` (for asynchronous copies to CUDA)."""
    return tensor.pin_memory() if pin else tensor


def batch_tensor(batch: dict, preset: str, device):
    """Return the batch's images preprocessed as a float32 tensor (B, 3, H, W) on ``device``."""
    return to_tensor(batch["images"], preset).to(device)

