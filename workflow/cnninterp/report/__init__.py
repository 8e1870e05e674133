"""The HTML report: one page (``index.html``) plus its figures, built from result files.

``build.build_report`` renders the registered sections (see ``build.SECTIONS``) in order; each
section is a module with ``available(results) -> bool`` and ``render(ctx) -> dict`` and a
template ``templates/<name>.html.j2``. A section whose result files are absent is left out.
"""
