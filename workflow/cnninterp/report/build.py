"""Build the HTML report: render every available section into ``<out>/index.html`` plus figures.

Sections are registered in ``SECTIONS``. A section is a module (or any object) with
``available(results) -> bool`` and ``render(ctx) -> dict``, plus a ``TEMPLATE`` (a file in
``templates/``) that receives that dict as ``data``. Adding a method to the report means adding
its module and template and one line to ``SECTIONS``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..atomic import atomic_path
from ..config import validate_config
from ..errors import ConfigError
from . import dissection, overview, provenance
from .context import Context

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE = "page.html.j2"
NOT_RUN = "not_run.html.j2"


@dataclass(frozen=True)
class Section:
    """A part of the report: shown when ``available(results)``; ``render(ctx)`` feeds ``template``."""

    id: str
    title: str
    template: str
    available: Callable[[Path], bool]
    render: Callable[[Context], dict]


def section(section_id: str, module) -> Section:
    """A Section from a module that defines TITLE, TEMPLATE, ``available`` and ``render``;
    ``section_id`` is its HTML anchor."""
    return Section(section_id, module.TITLE, module.TEMPLATE, module.available, module.render)


def method_sections() -> list[Section]:
    """One section per installed method (``cnninterp.<method>.report``), in METHODS order."""
    from ..methods import installed_methods, method_module

    out = []
    for method in installed_methods():
        module = method_module(method, "report")
        if module is not None:
            out.append(Section(method, module.TITLE, module.TEMPLATE, method_available(method, module), module.render))
    return out


def method_available(method: str, module) -> Callable[[Path], bool]:
    """A method's section is shown when its metrics exist (or it was switched off: then it says so)."""
    from ..methods import metrics_path

    def available(results: Path) -> bool:
        return (results / metrics_path(method).split("/", 1)[1]).is_file() and module.available(results)

    return available


def template_folders() -> list[Path]:
    """Where templates are looked up: the report's own, then each installed method's ``templates/``."""
    from ..methods import PACKAGE_DIR, installed_methods

    return [TEMPLATES] + [PACKAGE_DIR / m / "templates" for m in installed_methods() if (PACKAGE_DIR / m / "templates").is_dir()]


SECTIONS: list[Section] = [
    section("overview", overview),
    section("dissection", dissection),
    *method_sections(),
    section("provenance", provenance),
]


def environment():
    """The Jinja2 environment of the report templates (autoescaping on, undefined names are errors)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_folders()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pct"] = lambda x: f"{x:.1f}%"
    env.filters["num"] = lambda x, digits=3: "—" if x is None else f"{x:.{digits}f}"
    return env


def read_config(path: Path) -> tuple[dict, bytes]:
    """Return the validated config (defaults filled in) and the file's bytes."""
    import json

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (write it with 'cnninterp validate-config --out')") from None
    try:
        config = json.loads(data)
    except json.JSONDecodeError as err:
        raise ConfigError(f"config file {path} is not valid JSON: {err}") from None
    return validate_config(config, source=str(path)), data


def render_sections(ctx: Context, env, sections: list[Section]) -> list[dict]:
    """Render each available section to HTML; return [{id, title, html}] in registry order."""
    from markupsafe import Markup

    out = []
    for sec in sections:
        disabled = sec.id in ctx.config and not ctx.config[sec.id].get("enabled", True)
        if disabled:
            html = env.get_template(NOT_RUN).render(data={"method": sec.id, "title": sec.title})
            out.append({"id": sec.id, "title": sec.title, "html": Markup(html)})
            continue
        if not sec.available(ctx.results):
            log.info("report: section %s left out (no results)", sec.id)
            continue
        data = sec.render(ctx)
        html = env.get_template(sec.template).render(data=data)
        out.append({"id": sec.id, "title": sec.title, "html": Markup(html)})
    return out


def build_report(config: str | Path, results: str | Path, out: str | Path, sections: list[Section] | None = None) -> Path:
    """Write the report of the runs under ``results`` into the folder ``out``; return ``out/index.html``.

    ``config`` is the validated config JSON (``results/config.json``). The report is built in a
    temporary sibling folder and renamed to ``out`` when complete (an old ``out`` is replaced),
    so a failure leaves no partial report. Equal inputs give byte-identical files. ``sections``
    replaces the registry ``SECTIONS`` (tests use it).
    """
    from .. import __version__

    config_path, results, out = Path(config), Path(results), Path(out)
    cfg, raw = read_config(config_path)
    env = environment()
    with atomic_path(out) as staging:
        staging.mkdir(parents=True)
        ctx = Context(config=cfg, config_bytes=raw, results=results, out=out, staging=staging)
        rendered = render_sections(ctx, env, SECTIONS if sections is None else sections)
        page = env.get_template(PAGE).render(sections=rendered, version=__version__, config_sha256=ctx.config_sha256)
        (staging / "index.html").write_text(page, encoding="utf-8")
    log.info("report written to %s", out / "index.html")
    return out / "index.html"

