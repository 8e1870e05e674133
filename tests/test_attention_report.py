"""The "Causal attention" report section: rows and figures from metrics.json; a switched-off method gets the shared not-run note."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from cnninterp.attention import report

METRICS = {
    "mae": {"attention": 0.004, "attention_no_reg": 0.0036, "cnn": 0.0016}, "mae_predicting_the_mean": 0.013,
    "attention_on_cause": {"mass": 0.005, "area_share": 0.0068, "ratio": 0.73},
    "attention_on_cause_by_model": {"attention_no_reg": {"mass": 0.0075, "area_share": 0.0068, "ratio": 1.09}},
    "attention_placement_by_model": {"attention": {"band_rows": {"mass": 0.5, "area_share": 0.2, "ratio": 2.5}, "column_correlation": -0.875},
                                     "attention_no_reg": {"band_rows": {"mass": 0.1, "area_share": 0.2, "ratio": 0.5}, "column_correlation": None}},
    "causal_filtering": {"blobs": 10, "kept": 4, "causal": 2, "precision": 0.25, "recall": 0.5, "precision_if_all_kept": 0.2},
    "deletion": {"cause": 0.007, "distractor": 0.0002},
    "deletion_by_model": {"attention": {"cause": 0.007, "distractor": 0.0002}},
    "filter": {"level": 0.5, "sigma": 2.0, "threshold": 0.1, "cause_dilation": 3}, "figure_frames": 2,
}


def context(tmp_path: Path, enabled=True):
    folder = tmp_path / "results" / "eval" / "attention"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    strip = np.zeros((8, 16, 3), np.uint8)
    strip[:, 8:] = 200  # two different frames of 8 x 8
    np.save(folder / "strip.npy", strip)
    staging = tmp_path / "staging"

    def asset(*parts):
        path = staging.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, "/".join(parts)

    config = {"attention": {"enabled": enabled, "train": {"reg_weight": 0.1}}}
    return SimpleNamespace(config=config, results=tmp_path / "results", asset=asset), staging


def test_render_gives_rows_and_the_figures_present(tmp_path):
    ctx, staging = context(tmp_path)
    data = report.render(ctx)
    names = [name for name, _ in data["rows"]]
    assert any("CNN baseline" in n for n in names) and any("ratio" in n for n in names)
    assert [f["href"] for f in data["figures"]] == ["attention/strip.png", "attention/strip.gif"]
    assert (staging / "attention" / "strip.png").is_file() and data["figures"][0]["width"] == 16 * report.SCALE
    from PIL import Image

    with Image.open(staging / "attention" / "strip.gif") as gif:  # two frames of 8 px, scaled
        assert gif.n_frames == 2 and gif.size == (8 * report.SCALE, 8 * report.SCALE)


def test_the_section_template_renders_the_rows_figures_and_effects(tmp_path):
    from cnninterp.report.build import environment

    ctx, _ = context(tmp_path)
    html = environment().get_template(report.TEMPLATE).render(data=report.render(ctx))
    assert "CNN baseline" in html and "0.0016" in html and 'src="attention/strip.png"' in html
    assert "0.73 times" in html and "not more than chance" in html and "The paper" in html
    assert "-0.8750" in html and "undefined" in html  # the attention's placement, both models
    assert "Why not on the cause" in html and "receptive field" in html  # the ratio 0.73 is short of the claim


def test_the_why_paragraph_of_the_defaults_is_shown_only_for_the_default_settings(tmp_path):
    """WHY describes the 64×128, T = 8, L = 128 defaults; another run (here 80×160, T = 20, not located)
    gets a note with its own frame size, T and L (10 × 20 = 200 cells) instead."""
    from cnninterp.report.build import environment

    ctx, _ = context(tmp_path)
    assert report.render(ctx)["why"] == report.WHY  # METRICS' ratio 0.73 < 2, defaults (missing keys are defaults)
    ctx.config["attention"].update(data={"height": 80, "width": 160, "seq_len": 20, "shard_size": 7}, model={"located": False})
    why = report.render(ctx)["why"]
    assert "64×128 frames (T" not in why and "L = 128" not in why and "1.18–3.14" not in why
    assert "80×160 frames, T = 20 steps over L = 200 cells" in why
    assert "attention.data.height, attention.data.width, attention.data.seq_len, attention.model.located not" in why
    html = environment().get_template(report.TEMPLATE).render(data=report.render(ctx))
    assert "L = 200 cells" in html
    ctx.config["attention"].update(data={}, model={"logit_scale": 16.0})  # the default given explicitly
    assert report.render(ctx)["why"] == report.WHY
