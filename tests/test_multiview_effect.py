"""On the default settings (the schema's defaults), trained from scratch: what the canonical
representation does measurably, and the paper's MPJPE claim (canonical below baseline), which
this CPU budget does not reproduce (see the xfail reason for the measured numbers)."""

import json

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_result(tmp_path_factory):
    import torch

    from cnninterp.config import load_schema
    from cnninterp.data.multiview import MultiviewConfig, write_multiview
    from cnninterp.multiview.evaluate import evaluate
    from cnninterp.multiview.model import KINDS, ModelSpec
    from cnninterp.multiview.train import train_model

    torch.set_num_threads(1)
    schema = load_schema()["properties"]["multiview"]["properties"]
    d, m, t, e = ({k: v["default"] for k, v in schema[part]["properties"].items()} for part in ("data", "model", "train", "eval"))
    seed = schema["seed"]["default"]
    tmp = tmp_path_factory.mktemp("multiview")
    shard_size = d.pop("shard_size")
    assert d.pop("source") == "synthetic"  # the rig's own settings only (the h36m block is for a Human3.6M root)
    d.pop("h36m")
    write_multiview(tmp / "shards", MultiviewConfig(seed=seed, **d), shard_size=shard_size)
    paths = {}
    for kind in KINDS:
        paths[kind] = tmp / kind / "model.pt"
        train_model(tmp / "shards", paths[kind], ModelSpec(kind=kind, image_size=d["image_size"], views=d["views"], **m),
                    seed=seed, device="cpu", **t)
    result = evaluate(tmp / "shards", paths, tmp / "eval/metrics.json", **e)
    print(json.dumps(result, indent=1))
    return result


def test_the_canonical_latent_renders_cameras_orbited_out_of_plane(default_result):
    # turning the fused latent about the vertical axis moves the decoded skeleton as the truth moves:
    # at 150 and 180 degrees its 2D error stays below that of the unturned decoding. Measured on the
    # defaults (6 epochs): 2.79 vs 3.66 px at 150°, 2.81 vs 3.74 px at 180° (ratio 0.75; with the truth
    # camera on the pelvis's axis, before 2026-12-03: 2.76 vs 3.65 and 2.78 vs 3.72); after
    # 30 epochs on 1,000 poses: 1.39 vs 4.53 and 1.37 vs 4.74 px (ratio 0.3)
    nv = default_result["novel_view_px"]["out_of_plane"]
    assert any(angle >= 150 for angle in nv["angles_deg"]), nv  # else the loop below checks nothing
    for i, angle in enumerate(nv["angles_deg"]):
        if angle >= 150:
            assert nv["canonical_px"][i] < 0.85 * nv["unrotated_px"][i], (angle, nv)


def test_sii_matches_svd_within_a_tenth_of_a_millimetre(default_result):
    assert max(default_result["dlt"]["max_abs_diff_mm"].values()) < 0.1


@pytest.mark.xfail(strict=True, reason=(
    "Not reproduced on the CPU budget: measured on the defaults, canonical fusion's MPJPE is above the "
    "per-view baseline's (see the report); its 2D error is close to the baseline's but its views agree "
    "(low reprojection_px), so the DLT cannot average their errors out"))
def test_canonical_fusion_beats_the_baseline_on_held_out_poses(default_result):
    assert default_result["mpjpe_mm"]["canonical"] < default_result["mpjpe_mm"]["baseline"]
