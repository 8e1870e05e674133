"""What every report section reads: the config, result files, and where to put assets."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ..config import dissect_settings
from ..errors import DataError

DATASET = "broden"
LOG = logging.getLogger(__name__)


def read_json(path: str | Path, what: str) -> dict:
    """Return the JSON object in ``path``; DataError naming the file and ``what`` it should hold."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} is missing ({what})") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({what}): {err}") from None


def safe_name(text: str) -> str:
    """Return ``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_`` (for file names)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


@dataclass(frozen=True)
class DissectedModel:
    """A model named in ``dissect.models``: its effective settings and its random-control pairing.

    ``control`` is the random control of a trained model (same ``source``, ``random_init: true``);
    ``control_of`` is set on the control itself and names the model it is the control of.
    ``mismatched`` lists, for a model left without its twin, the models of the other kind (random
    for a trained model, trained for a random one) with the same ``source`` that differ in some
    ``COMPARED`` setting: ``(other model, ((key, this model's value, other's value), ...))``.
    """

    name: str
    source: str
    random: bool
    settings: dict
    control: str | None = None
    control_of: str | None = None
    mismatched: tuple = ()


def is_random(settings: dict) -> bool:
    """True for a randomly initialised model: ``random_init``, or a torchvision source with neither
    a ``checkpoint`` nor published ``weights`` (which the pipeline loads)."""
    if settings.get("random_init"):
        return True
    return settings["source"].startswith("torchvision:") and not settings.get("checkpoint") and not settings.get("weights")


#: Settings a model and its random control must share for their detector counts to compare.
COMPARED = ("layers", "quantile", "iou_threshold", "denominator", "preprocess")


def pair_models(config: dict) -> list[DissectedModel]:
    """Return the dissected models in config order, each trained one paired with its random control.

    A trained model's control is the first random model with the same ``source`` and the same
    ``COMPARED`` settings (layers, quantile, IoU threshold, denominator, preprocessing): a control
    dissected otherwise is no control, its counts do not compare. A model without such a twin has
    ``control`` None; a model of the other kind with the same ``source`` that differs in a compared
    setting is named in its ``mismatched`` (with the differing keys), and a warning is logged.
    """
    names = list(config["dissect"]["models"])
    settings = {name: dissect_settings(config, name) for name in names}
    random = {name: is_random(settings[name]) for name in names}

    def compared(name):
        return [settings[name].get(key) for key in ("source", *COMPARED)]

    def differences(name, other):
        return tuple((key, settings[name].get(key), settings[other].get(key)) for key in COMPARED if settings[name].get(key) != settings[other].get(key))

    out = []
    for name in names:
        twins = [other for other in names if other != name and compared(other) == compared(name) and random[other] != random[name]]
        twin = twins[0] if twins else None
        mismatched = ()
        if twin is None:
            near = [o for o in names if o != name and random[o] != random[name] and settings[o]["source"] == settings[name]["source"]]
            mismatched = tuple((other, differences(name, other)) for other in near)
            if not random[name]:
                for other, diffs in mismatched:
                    LOG.warning("%s", unpaired_text(name, other, diffs, name_is_random=False))
        out.append(
            DissectedModel(
                name=name,
                source=settings[name]["source"],
                random=random[name],
                settings=settings[name],
                control=None if random[name] else twin,
                control_of=twin if random[name] else None,
                mismatched=mismatched,
            )
        )
    return out


def unpaired_text(name: str, other: str, diffs: tuple, name_is_random: bool) -> str:
    """The sentence naming a random model that is not compared with a trained one of the same
    source because ``diffs`` (``(key, name's value, other's value), ...``) differ; ``name`` is the
    random one when ``name_is_random``."""
    random_name, trained = (name, other) if name_is_random else (other, name)
    parts = []
    for key, mine, theirs in diffs:
        rand, train = (mine, theirs) if name_is_random else (theirs, mine)
        parts.append(f"{key} ({_value(rand)} vs {_value(train)})")
    return f"{random_name} is a random control of {trained} but differs in {', '.join(parts)}, so it is not compared"


def _value(value) -> str:
    """A setting's value as the config spells it (lists joined by ", ")."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


@dataclass
class Context:
    """Inputs and output helpers shared by the sections of one report build.

    ``out`` is the final report folder (links are computed relative to it); ``staging`` is the
    temporary folder being written, renamed to ``out`` once the whole report is complete.
    """

    config: dict
    config_bytes: bytes
    results: Path
    out: Path
    staging: Path
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def config_sha256(self) -> str:
        """sha256 of results/config.json, byte for byte."""
        import hashlib

        return hashlib.sha256(self.config_bytes).hexdigest()

    # -- output ---------------------------------------------------------------------------------
    def asset(self, *parts: str) -> tuple[Path, str]:
        """Return (path to write under ``staging``, its href from index.html) for an asset file."""
        rel = Path(*[safe_name(p) for p in parts])
        path = self.staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, quote(rel.as_posix())

    def link(self, path: str | Path) -> str:
        """Return the href from index.html (in ``out``) to a file such as a result table."""
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(self.out))
        return quote(Path(rel).as_posix())

    # -- inputs ---------------------------------------------------------------------------------
    @property
    def models(self) -> list[DissectedModel]:
        """The models of ``dissect.models``, paired with their random controls (see ``pair_models``)."""
        if "models" not in self._cache:
            self._cache["models"] = pair_models(self.config)
        return self._cache["models"]

    @property
    def shard_dir(self) -> Path:
        """The Broden shard folder under ``results``."""
        return self.results / "shards" / DATASET

    @property
    def manifest(self) -> dict | None:
        """The Broden shard manifest, or None when the shards were not built."""
        if "manifest" not in self._cache:
            path = self.shard_dir / "manifest.json"
            self._cache["manifest"] = read_json(path, "the shard manifest") if path.is_file() else None
        return self._cache["manifest"]

    def dissect_dir(self, model: str) -> Path:
        """The folder of ``model``'s dissection results."""
        return self.results / "dissect" / model

    def summary(self, model: str) -> dict | None:
        """``model``'s dissection summary.json, or None when it does not exist."""
        key = f"summary:{model}"
        if key not in self._cache:
            path = self.dissect_dir(model) / "summary.json"
            self._cache[key] = read_json(path, f"dissection summary of model {model!r}") if path.is_file() else None
        return self._cache[key]

    def require_summary(self, model: str) -> dict:
        """``model``'s summary.json; DataError naming the file when it is missing."""
        summary = self.summary(model)
        if summary is None:
            path = self.dissect_dir(model) / "summary.json"
            raise DataError(
                f"{path} is missing: model {model!r} is listed in dissect.models of the config but has no "
                "dissection results; run its dissection first (snakemake, or 'cnninterp dissect') or remove it from the config"
            )
        return summary
