"""Code inputs derived from the import graph: which files a job's code is, read from the source."""

from cnninterp.codedeps import PACKAGE_DIR, code_files, import_closure


def test_lazy_imports_inside_functions_count():
    # report.figures is imported inside a function of multiview.evaluate
    assert "cnninterp.report.figures" in import_closure("cnninterp.multiview.evaluate")


def test_templates_are_code_of_the_report_job_only():
    evaluate = code_files("cnninterp.multiview.evaluate")
    assert PACKAGE_DIR / "report" / "figures.py" in evaluate
    assert not [p for p in evaluate if "templates" in p.parts]
    report = code_files("cnninterp.report.build", "cnninterp.multiview.report")
    assert PACKAGE_DIR / "report" / "templates" / "dissection.html.j2" in report
    assert PACKAGE_DIR / "multiview" / "templates" / "multiview.html.j2" in report


def test_top_level_imports_are_what_importing_the_module_runs():
    from cnninterp.codedeps import direct_imports

    everywhere, top = direct_imports("cnninterp.cli"), direct_imports("cnninterp.cli", top_level=True)
    # cli.py parses every command's floats with argtypes at module level; it imports the
    # dissection engine only inside the commands that run it
    assert "cnninterp.argtypes" in top and "cnninterp.errors" in top
    assert "cnninterp.dissect.engine" in everywhere and "cnninterp.dissect.engine" not in top
    assert top < everywhere


def test_reading_shards_does_not_make_the_downloader_code():
    """shards.py took sha256_file from download.py, so an edit of the downloader reran every job
    that reads shards (training, dissection, every method); the digest has its own module."""
    for module in ("cnninterp.data.shards", "cnninterp.data.trained_on", "cnninterp.train.baseline"):
        files = code_files(module)
        assert PACKAGE_DIR / "data" / "digest.py" in files and PACKAGE_DIR / "data" / "download.py" not in files, module


def test_the_config_check_does_not_make_data_readers_code():
    """config.py is code of every job that checks its options against the schema (trainings,
    dissections, attention steps); the source and camera checks it runs must not drag the Broden
    reader or the multiview data module in (an edit of either would rerun every training)."""
    names = {p.relative_to(PACKAGE_DIR).as_posix() for p in code_files("cnninterp.config")}
    assert "data/rig.py" in names and not {"data/broden.py", "data/multiview.py", "data/shards.py"} & names, sorted(names)
