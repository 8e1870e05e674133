"""Load and validate the pipeline configuration against workflow/schemas/config.schema.yaml."""

from __future__ import annotations

import copy
import math
from pathlib import Path

from .errors import ConfigError, DataError

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


_PARSED_SCHEMAS: dict = {}  # (path, mtime) of each schema file -> the parsed schema (load_schema)


def load_schema() -> dict:
    """Return the config JSON schema (a dict) read from ``SCHEMA_PATH``, with each installed
    method's block (``workflow/schemas/<method>.schema.yaml``) added under ``properties.<method>``.

    The files are parsed once per process (and again when one changes); each call returns its own
    copy. Why: every ``cnninterp`` command builds its parser from the schema's defaults
    (``method_defaults``) and checks its options against it, and a parse costs about 55 ms."""
    import copy

    import yaml

    from .methods import installed_methods, schema_path

    if not SCHEMA_PATH.is_file():
        raise ConfigError(f"config schema not found at {SCHEMA_PATH}; is the package installed editable (pip install -e .)?")
    files = {None: SCHEMA_PATH}
    for method in installed_methods():
        files[method] = schema_path(method)
        if not files[method].is_file():
            raise ConfigError(f"method {method!r} has no config schema at {files[method]}")
    key = tuple((method, str(path), path.stat().st_mtime_ns) for method, path in files.items())
    if key not in _PARSED_SCHEMAS:
        schema = yaml.safe_load(SCHEMA_PATH.read_text())
        for method, path in files.items():
            if method is not None:
                schema["properties"][method] = yaml.safe_load(path.read_text())
        _PARSED_SCHEMAS[key] = schema
    return copy.deepcopy(_PARSED_SCHEMAS[key])


def method_defaults(method: str, sections: tuple[str, ...]) -> dict:
    """The defaults of ``method``'s config block from the schema: {"seed": default, section: {key:
    default}} for each of ``sections`` (e.g. ("data", "model", "train", "eval")); keys without a
    default are left out."""
    schema = load_schema()["properties"][method]["properties"]
    out = {p: {k: v["default"] for k, v in schema[p]["properties"].items() if "default" in v} for p in sections}
    out["seed"] = schema["seed"]["default"]
    return out


def method_enabled(config: dict, method: str) -> bool:
    """Whether ``method``'s jobs are in the DAG: installed and ``<method>.enabled`` (default true)."""
    from .methods import installed_methods

    return method in installed_methods() and bool(config.get(method, {}).get("enabled", True))


def _strict_validator_class():
    """Draft 2020-12 whose ``integer`` is a Python int only (not bool, not a whole float).

    Why: JSON Schema counts 3.0 as an integer, so ``epochs: 3.0`` was valid and failed late in the
    training job's argparse, and ``report.gallery_units: 2.0`` ran the whole DAG and broke the
    report with a slice TypeError."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    return validators.extend(Draft202012Validator, type_checker=checker)


def schema_default(sub: dict, root: dict):
    """(True, default) of the schema node ``sub``, following a local ``$ref`` ("#/$defs/...") of
    ``root`` when ``sub`` has no ``default`` of its own; (False, None) when neither has one.

    Why: ``dissect.defaults: {$ref: ...}`` kept its default behind the reference, so a config
    without the block validated and then lost every dissection default (KeyError 'layers' after
    the shards were built)."""
    if "default" in sub:
        return True, sub["default"]
    ref = sub.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node = root
        for part in ref[2:].split("/"):
            node = node[part]
        return schema_default(node, root)
    return False, None


def _validator_with_defaults(schema: dict):
    """Return a validator (``_strict_validator_class``) that also fills in the ``default`` values
    of properties, their own or their ``$ref``'s (``schema_default``)."""
    from jsonschema import validators

    base = _strict_validator_class()

    def set_defaults(validator, properties, instance, schema_node):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                has, default = schema_default(sub, schema) if isinstance(sub, dict) else (False, None)
                if has and key not in instance:
                    instance[key] = copy.deepcopy(default)
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema_node)

    cls = validators.extend(base, {"properties": set_defaults})
    return cls(schema)


def format_path(path) -> str:
    """Render a jsonschema error path (a deque of keys and indices) as ``a.b[0].c``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def validate_config(config: dict, source: str = "config") -> dict:
    """Validate ``config`` (a dict) and return a copy with schema defaults filled in.

    Raises ConfigError naming ``source``, the key's path and the reason of the first errors.
    """
    config = copy.deepcopy(config)
    validator = _validator_with_defaults(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"  {format_path(e.absolute_path)}: {e.message}" for e in errors[:10]]
        raise ConfigError(f"invalid configuration in {source}:\n" + "\n".join(lines))
    bad = list(non_finite_numbers(config))
    if bad:
        lines = [f"  {format_path(where)}: {value} is not a finite number" for where, value in bad[:10]]
        raise ConfigError(f"invalid configuration in {source}:\n" + "\n".join(lines))
    check_train_names(config, source)
    check_multiview_camera(config, source)
    check_attention_pitch(config, source)
    return config


MAX_PITCH_SHARE = 0.5  # attention.data.pitch_px may move the horizon by at most this share of the frame's height


def pitch_error(pitch_px: float, height: int) -> str | None:
    """Why a synthetic road camera's pitch drift amplitude (pixels) does not fit a frame ``height`` pixels
    high (it may move the horizon by at most ``MAX_PITCH_SHARE`` of the height, or the look-ahead band
    leaves the frame), or None. Here, not in data.driving: every job's options are checked by this
    module, which must not make the driving data code theirs (tests/test_codedeps.py)."""
    if pitch_px > MAX_PITCH_SHARE * height:
        return f"must be at most {MAX_PITCH_SHARE:g} of the frame height ({height} px), got {pitch_px:g}"
    return None


def check_attention_pitch(config: dict, source: str = "config") -> None:
    """ConfigError naming ``attention.data.pitch_px`` when the synthetic camera's pitch drift does not fit
    ``attention.data.height`` (``pitch_error``, which the data step checks too). The schema bounds each
    key alone; without this a small frame with the default pitch failed in the data job."""
    from .methods import installed_methods

    block = config.get("attention")
    if "attention" not in installed_methods() or not block or not block.get("enabled", True):
        return
    data = block["data"]
    if data["source"] != "synthetic":
        return
    why = pitch_error(data["pitch_px"], data["height"])
    if why is not None:
        raise ConfigError(f"invalid configuration in {source}:\n  attention.data.pitch_px: {why} (attention.data.height); "
                          "scale it with the height, about 0.2 of it")


def check_multiview_camera(config: dict, source: str = "config") -> None:
    """ConfigError naming ``multiview.data.heldout_view`` / ``heldout_azimuth_deg`` when the
    unseen split's moved camera does not fit the rig (``data.rig.check_heldout_camera``, which the data step runs too).

    Why here: since the evaluation data has its own job, only that job checked it, after the
    training data and the three trainings had run."""
    from .methods import installed_methods

    block = config.get("multiview")
    if "multiview" not in installed_methods() or not block or not block.get("enabled", True):
        return
    from .data.rig import check_heldout_camera

    data = block["data"]
    if data.get("source") == "h36m":  # a Human3.6M root has fixed cameras and no unseen-camera split
        return
    try:
        check_heldout_camera(data["views"], data["heldout_view"], data["heldout_azimuth_deg"])
    except DataError as err:
        raise ConfigError(f"invalid configuration in {source}:\n  multiview.data.heldout_view / heldout_azimuth_deg: {err}") from None


def check_train_names(config: dict, source: str = "config") -> None:
    """ConfigError when a ``train.<name>`` would share ``results/models/<name>/`` with a method's
    own models (``<method>_...``, e.g. ``icnn_cnn``): Snakemake then stopped with an
    AmbiguousRuleException about two rules for one file."""
    from .methods import installed_methods

    methods = installed_methods()
    for name in config.get("train", {}):
        clash = next((m for m in methods if name == m or name.startswith(f"{m}_")), None)
        if clash is not None:
            raise ConfigError(f"invalid configuration in {source}:\n  train.{name}: names starting with {clash}_ are the {clash} method's "
                              f"model folders (results/models/{clash}_...); choose another name")


def non_finite_numbers(value, where: tuple = ()):
    """Yield (key path, value) for every NaN or ±inf float inside ``value`` (nested dicts and lists).

    Why beside the schema: its minimum/maximum checks are comparisons, and every comparison with
    NaN is false, so YAML's ``.nan`` passed every ranged key and reached the data (a NaN look-ahead
    gave NaN steering targets)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from non_finite_numbers(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from non_finite_numbers(item, (*where, index))


def read_config_file(path: str | Path) -> dict:
    """The mapping in a JSON or YAML config file (not validated), read as Snakemake reads a
    ``--configfile``: JSON first (PyYAML would read JSON's ``1e-3`` as a string), else YAML.
    ConfigError naming the file (and the line) when it is missing, empty, not YAML or not a mapping."""
    import json

    import yaml

    path = Path(path)
    try:
        text = path.read_text()
        try:
            data = json.loads(text)
        except ValueError:
            data = yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML: {what}{where}") from None
    if data is None:
        raise ConfigError(f"config file {path} is empty: give the settings as a YAML or JSON mapping")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} holds a {type(data).__name__}, not a mapping of settings")
    return data


def merge_on_top(base, top: dict):
    """``base`` with ``top``'s keys laid over it (a new object), as Snakemake's ``update_config``
    lays a ``--configfile`` over the Snakefile's ``configfile:``: a mapping in ``top`` merges key by
    key into the mapping in ``base``; a non-mapping in ``base`` under a non-empty mapping becomes
    that mapping, under an empty one it stays; any other value of ``top`` replaces."""
    if not top:
        return copy.deepcopy(base)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in top.items():
        out[key] = merge_on_top(out.get(key, {}), value) if isinstance(value, dict) else copy.deepcopy(value)
    return out


def load_config(path: str | Path, *on_top: str | Path) -> dict:
    """Read a YAML config file, lay the files ``on_top`` over it in order (``merge_on_top``),
    validate the result and return it with defaults filled in."""
    config = read_config_file(path)
    for more in on_top:
        config = merge_on_top(config, read_config_file(more))
    return validate_config(config, source=" + ".join(str(p) for p in (path, *on_top)))


def dissect_settings(config: dict, model: str) -> dict:
    """Return the effective dissection settings of ``model``: dissect.defaults overridden by its entry.

    Also fills ``random_init`` (False), ``init_seed`` (1), ``random_bn`` ("init") and ``checkpoint``
    (None) when absent; ConfigError for a ``random_bn`` other than "init" on a model that is not the
    random control of a trained model, and for ``random_bn: task`` when that training estimates no
    BatchNorm statistics (``bn_images: 0``).
    ConfigError when a ``trained:`` source would be dissected with another preprocessing than its training's.
    """
    models = config["dissect"]["models"]
    if model not in models:
        raise ConfigError(f"dissect.models has no model {model!r} (has {', '.join(models)})")
    merged = {"random_init": False, "init_seed": 1, "random_bn": "init", "checkpoint": None, "preprocess": "imagenet"}
    merged.update(config["dissect"].get("defaults", {}))
    merged.update(models[model])
    kind, name = merged["source"].split(":", 1)
    if merged["random_bn"] != "init" and not (kind == "trained" and merged["random_init"]):
        raise ConfigError(f"dissect.models.{model}.random_bn: {merged['random_bn']!r} applies to the random control of a trained "
                          "model (source trained:<name> with random_init: true); leave it out here")
    if kind == "trained":
        if name not in config.get("train", {}):
            raise ConfigError(f"dissect.models.{model}.source: no train entry {name!r} (train has {', '.join(config.get('train', {})) or 'none'})")
        if merged["random_bn"] == "task" and config["train"][name].get("bn_images", 1) == 0:
            # the control would keep torch's initial statistics while named as estimated on the task images
            raise ConfigError(f"dissect.models.{model}.random_bn: 'task' estimates the control's BatchNorm statistics as "
                              f"train.{name}'s are, but train.{name}.bn_images is 0 (its running averages are kept, nothing is "
                              f"estimated); set random_bn: init, or bn_images > 0")
        trained_with = config["train"][name].get("preprocess", "imagenet")
        if merged["preprocess"] != trained_with:
            # thresholds and IoUs would be measured on inputs the network never saw
            raise ConfigError(f"dissect.models.{model}.preprocess is {merged['preprocess']!r} but train.{name}.preprocess is "
                              f"{trained_with!r}: dissect a trained model with its training's preprocessing "
                              f"(set dissect.models.{model}.preprocess: {trained_with})")
    return merged


def _cli_properties(schema: dict, command: str) -> dict:
    """The schema properties that a command's options share with the config (option dest -> schema)."""
    if command == "train":
        return next(iter(schema["properties"]["train"]["patternProperties"].values()))["properties"]
    return schema["$defs"]["dissect_defaults"]["properties"]


def validate_cli_values(command: str, values: dict, properties: dict | None = None, where: str = "") -> None:
    """Check command-line values against the same schema ranges the config uses.

    ``values`` maps option names (argparse dests such as ``iou_threshold``) to their values; those
    the schema does not declare for ``command`` (``train`` or a dissection step) are ignored.
    ``properties``: the schema properties to check against instead (a method's block, e.g. for
    ``attention data``); ``where`` is added to the message (which schema file). Raises ConfigError
    naming the option, the value and the rule it breaks.
    """
    schema = load_schema()
    props = _cli_properties(schema, command) if properties is None else properties
    known = {k: v for k, v in values.items() if k in props and v is not None}
    sub = {"$defs": schema["$defs"], "type": "object", "properties": {k: props[k] for k in known}}
    errors = sorted(_strict_validator_class()(sub).iter_errors(known), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for err in errors[:10]:
            key = str(err.absolute_path[0]) if err.absolute_path else "?"
            lines.append(f"  --{key.replace('_', '-')} {known.get(key)!r}: {err.message}")
        raise ConfigError(f"invalid option value(s) for cnninterp {command}{where}:\n" + "\n".join(lines))


# architectures known without importing torchvision (about 3 s); others are looked up in it
COMMON_ARCHS = frozenset({"resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "densenet121", "googlenet", "mobilenet_v2"})


def check_train_archs(config: dict) -> None:
    """Check every ``train.<name>.arch`` names an architecture we can build, before any job runs;
    ConfigError naming the key and listing similar names otherwise."""
    unknown = {name: t["arch"] for name, t in config.get("train", {}).items() if t["arch"] not in COMMON_ARCHS}
    if not unknown:
        return
    import difflib

    import torchvision

    known = set(torchvision.models.list_models(module=torchvision.models)) | {"resnet10"}
    for name, arch in sorted(unknown.items()):
        if arch not in known:
            close = difflib.get_close_matches(arch, sorted(known), n=4)
            raise ConfigError(f"train.{name}.arch: {arch!r} is not a torchvision architecture (nor resnet10)" + (f"; did you mean {', '.join(close)}?" if close else ""))
