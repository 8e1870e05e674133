"""Build torchvision architectures by name and load checkpoints safely."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ModelError

log = logging.getLogger(__name__)

EXTRA_ARCHS = ("resnet10",)
# the classifier head of a random init that is no trained model's (torchvision's default). The head
# is built before the convolutions are re-initialised, so its size changes every layer's random
# draws: two random controls of one init seed have the same weights only with the same head.
INIT_CLASSES = 1000


def build_arch(arch: str, num_classes: int = INIT_CLASSES):
    """Return an untrained ``torch.nn.Module`` of a torchvision architecture (weights=None).

    ``resnet10`` is torchvision's ResNet with one BasicBlock per stage (a CPU-sized ResNet whose
    layer names match resnet18's). Raises ModelError for an unknown name, listing the known ones.
    """
    import torchvision

    if arch == "resnet10":
        from torchvision.models.resnet import BasicBlock, ResNet

        return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)
    known = torchvision.models.list_models(module=torchvision.models)
    if arch not in known:
        raise ModelError(f"unknown architecture {arch!r}; torchvision has: {', '.join(sorted(known)[:40])}, ... and {', '.join(EXTRA_ARCHS)}")
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)


def random_model(arch: str, seed: int, num_classes: int = INIT_CLASSES):
    """Return ``arch`` randomly initialised with torch's default init under ``seed`` (in eval mode)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_arch(arch, num_classes)
    return model.eval()


def read_checkpoint(path: str | Path):
    """Load a checkpoint file with ``torch.load(weights_only=True)`` on the CPU and return what it holds.

    Every way a file can fail to be a checkpoint (missing, empty, a text file, truncated, a pickle
    that carries code) is a ModelError naming the file and saying what to do.
    """
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist; check the path (or train the model first)")
    if path.stat().st_size == 0:
        raise ModelError(f"checkpoint {path} is empty (0 bytes), e.g. from an interrupted copy; write it again")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ModelError(
            f"checkpoint {path} was refused by the weights-only loader (it holds objects other than tensors "
            f"and plain containers, possibly code): {str(err).splitlines()[0]}; save a plain state_dict instead"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, KeyError, ValueError, OSError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(
            f"checkpoint {path} is not a readable torch file (truncated, or not written by torch.save): {reason}"
        ) from None


def strip_prefix(state_dict: dict, prefix: str = "module.") -> dict:
    """``state_dict`` with ``prefix`` removed from its keys when every key carries it (DataParallel
    checkpoints, e.g. NetDissect's ``resnet18_places365.pth.tar``); unchanged otherwise."""
    if state_dict and all(isinstance(k, str) and k.startswith(prefix) for k in state_dict):
        return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return state_dict


def load_state_dict_file(path: str | Path) -> dict:
    """Load a state_dict (or a checkpoint holding one under ``state_dict``, with or without the
    ``module.`` prefix of DataParallel) with weights_only=True; returns name -> tensor."""
    data = read_checkpoint(path)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ModelError(f"checkpoint {path} holds a {type(data).__name__}, not a state_dict")
    return strip_prefix(data)


def load_weights(model, state_dict: dict, source: str) -> None:
    """Load ``state_dict`` into ``model`` strictly; ModelError lists missing and unexpected keys and shape clashes."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state_dict))
        if hasattr(state_dict[k], "shape") and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing[:12])}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:12])}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {'; '.join(shapes[:6])}")
        raise ModelError(f"checkpoint {source} does not fit the architecture: " + " | ".join(parts))
    model.load_state_dict(state_dict)


def published_weights(arch: str, name: str):
    """The torchvision weights enum member ``name`` (``DEFAULT``, ``IMAGENET1K_V1``, ...) of ``arch``.

    ModelError lists the names the architecture has when ``name`` is not one of them.
    """
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        raise ModelError(f"torchvision architecture {arch!r} has no published weights") from None
    names = ["DEFAULT"] + [w.name for w in enum]
    try:
        return enum[name] if name != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise ModelError(f"weights {name!r} are not published for {arch}; choose one of: {', '.join(names)}") from None


def load_published(arch: str, name: str):
    """``arch`` with torchvision's published weights ``name``, through torchvision's own loader and
    its cache (``$TORCH_HOME/hub/checkpoints``): nothing is downloaded when the file is cached."""
    import torchvision

    weights = published_weights(arch, name)
    log.info("loading %s weights %s (cache: torch.hub.get_dir()/checkpoints)", arch, weights)
    try:
        return torchvision.models.get_model(arch, weights=weights).eval()
    except OSError as err:
        raise ModelError(f"weights {weights} for {arch} are not cached and could not be downloaded: {err}") from None


def load_model(spec: str, checkpoint: str | Path | None = None, init_seed: int = 1, num_classes: int | None = None, weights: str | None = None):
    """Return a model in eval mode from a spec.

    ``spec`` is ``torchvision:<arch>`` (torchvision's published ``weights`` when given, else weights
    from ``checkpoint``, else random with ``init_seed`` and a warning; num_classes taken from the
    checkpoint's last layer when not given) or ``checkpoint`` (a checkpoint written by this
    project's training loop, holding arch and classes).
    """
    if spec == "checkpoint":
        if checkpoint is None:
            raise ModelError("model spec 'checkpoint' needs --checkpoint")
        data = read_checkpoint(checkpoint)
        if not isinstance(data, dict) or "arch" not in data or not isinstance(data.get("state_dict"), dict):
            raise ModelError(f"{checkpoint} is not a checkpoint of this project's training loop (no 'arch' entry)")
        model = build_arch(data["arch"], int(data["num_classes"]))
        load_weights(model, data["state_dict"], str(checkpoint))
        return model.eval()
    kind, _, arch = spec.partition(":")
    if kind != "torchvision" or not arch:
        raise ModelError(f"model spec {spec!r} must be 'torchvision:<arch>' or 'checkpoint'")
    if weights is not None:
        if checkpoint is not None:
            raise ModelError(f"give weights ({weights}) or a checkpoint ({checkpoint}) for {spec}, not both")
        return load_published(arch, weights)
    if checkpoint is None:
        log.warning("%s has neither weights nor a checkpoint: it is randomly initialised (seed %d)", spec, init_seed)
        return random_model(arch, init_seed, num_classes or INIT_CLASSES)
    state = load_state_dict_file(checkpoint)
    if num_classes is None:
        last = [v for k, v in state.items() if k.endswith("weight") and getattr(v, "ndim", 0) == 2]
        num_classes = int(last[-1].shape[0]) if last else INIT_CLASSES
    model = build_arch(arch, num_classes)
    load_weights(model, state, str(checkpoint))
    return model.eval()
