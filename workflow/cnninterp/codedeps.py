"""Which package files a pipeline step runs: the import graph of its modules, within ``cnninterp``.

A Snakemake job lists these files as inputs, so editing one reruns exactly the jobs whose code
imports it (directly or through other modules). The graph is read from the source with ``ast``,
never by importing anything, so it is cheap and has no side effects. Every ``import`` statement
counts, including those inside functions (the package imports heavy modules lazily). The only
non-Python files the package reads are the Jinja templates in ``templates/`` folders (the
report's and each method's), and only ``report.build`` reads them: they are code of the jobs
whose closure contains it (the report), not of every job that imports something from a folder
that has templates (a method's evaluation that borrows a PNG writer from ``report.figures``
does not rerun when a template changes).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "cnninterp"
PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATE_READER = f"{PACKAGE}.report.build"  # the one module that loads templates/ files


def module_file(module: str, root: Path = PACKAGE_DIR) -> Path | None:
    """The source file of ``module`` (``cnninterp.a.b``) under ``root``, or None if it is not one."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(module: str, path: Path) -> str:
    """The package a module's relative imports start from."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def direct_imports(module: str, root: Path = PACKAGE_DIR, top_level: bool = False) -> set[str]:
    """Modules of the package that ``module``'s source imports anywhere (absolute or relative), or
    with ``top_level`` only in its module-level statements (what importing it runs, whichever of
    its functions is called: for an entry point like ``cli``, the code of every command)."""
    path = module_file(module, root)
    if path is None:
        raise ValueError(f"{module!r} is not a module of the {PACKAGE} package under {root}")
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    here = _package_of(module, path)
    for node in (tree.body if top_level else ast.walk(tree)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pkg import name`: name may be a submodule or an attribute of pkg
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            # importing a.b.c runs a/__init__, a/b/__init__ too
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if module_file(candidate, root) is not None:
                    found.add(candidate)
    found.discard(module)
    return found


@lru_cache(maxsize=None)
def _closure(modules: tuple[str, ...], root: Path) -> tuple[str, ...]:
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(direct_imports(module, root) - seen)
    return tuple(sorted(seen))


def import_closure(*modules: str, root: Path = PACKAGE_DIR) -> list[str]:
    """Every package module that ``modules`` import, transitively, themselves included (sorted)."""
    return list(_closure(tuple(sorted(modules)), root))


def code_files(*modules: str, root: Path = PACKAGE_DIR) -> list[Path]:
    """Source files of ``import_closure(*modules)``, plus, when that closure renders templates
    (contains ``TEMPLATE_READER``), the ``templates/`` files of its folders (sorted, absolute)."""
    closure = import_closure(*modules, root=root)
    files = {module_file(m, root) for m in closure}
    if TEMPLATE_READER not in closure:
        return sorted(files)
    for folder in {f.parent for f in files}:
        templates = folder / "templates"
        if templates.is_dir():
            files.update(p for p in templates.rglob("*") if p.is_file())
    return sorted(files)


def relative_code_files(*modules: str, workflow_dir: str | Path, root: Path = PACKAGE_DIR) -> list[str]:
    """``code_files`` as paths relative to ``workflow_dir`` (so a moved checkout reruns nothing)."""
    base = Path(workflow_dir).resolve()
    return [str(p.resolve().relative_to(base)) for p in code_files(*modules, root=root)]
