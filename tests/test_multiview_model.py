"""The multi-view models: FTL with camera rotations, soft-argmax, DLT on model outputs, novel-view
cameras, MPJPE, and a tiny run of data -> train -> evaluate."""

import json
import math

import numpy as np
import pytest
import torch

from cnninterp.data import multiview as mvdata
from cnninterp.errors import DataError, ModelError
from cnninterp.multiview import novel
from cnninterp.multiview.evaluate import evaluate, mpjpe
from cnninterp.multiview.model import ModelSpec, build, soft_argmax, triangulate
from cnninterp.multiview.model import TRIANGULATION_DTYPE
from cnninterp.multiview.train import load_model, losses, tensors, train_model


def rotations(n, seed=0):
    q = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True)
    w, x, y, z = q.T
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)


def test_ftl_into_the_canonical_frame_and_back_is_the_identity():
    model = build(ModelSpec(kind="canonical", points=5)).double()
    R = rotations(6).view(2, 3, 3, 3)  # (B=2, V=3)
    z = torch.randn(2, 3, 15, dtype=torch.float64)
    back = model.rotate(model.rotate(z, R.transpose(-1, -2)), R)
    assert torch.allclose(back, z, atol=1e-12)


def test_ftl_turns_camera_frame_points_into_world_points():
    model = build(ModelSpec(kind="canonical", points=17)).double()
    rng = np.random.default_rng(2)
    X = torch.from_numpy(mvdata.random_pose(rng))  # (17, 3) world mm
    R = rotations(4, seed=3)  # 4 cameras
    cam = torch.einsum("vij,nj->vni", R, X)  # camera-frame directions R X, (V, 17, 3)
    world = model.rotate(cam.reshape(1, 4, 51), R.transpose(-1, -2)[None]).view(4, 17, 3)
    assert torch.allclose(world, X.expand(4, -1, -1), atol=1e-9)


def test_canonical_fuses_every_views_latent_in_the_world_frame():
    """canonical() turns each view's latent by its camera's Rᵀ before fusion: an encoder whose latent
    is the camera-frame joints R_v X (set with a forward hook on the real encoder) gives the fusion
    MLP the world joints X from every view (with R_v instead of R_vᵀ it gets R_v² X)."""
    model = build(ModelSpec(kind="canonical", points=17)).double()
    model.encoder.float()  # encode() feeds it float32 images; its output is replaced by the hook
    X = torch.from_numpy(mvdata.random_pose(np.random.default_rng(2)))  # (17, 3) world mm
    R = rotations(4, seed=3)  # (V=4, 3, 3) world -> camera
    cam = torch.einsum("vij,nj->vni", R, X).reshape(4, 51)  # (B·V, D) camera-frame latents
    model.encoder.register_forward_hook(lambda module, inputs, output: cam)
    seen = []
    model.fuse.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    model.canonical(torch.zeros(1, 4, 64, 64, 3), R[None])
    fused_input = seen[0].view(4, 17, 3)  # (V, J, 3): each view's latent as the fusion sees it
    assert (fused_input - X).norm(dim=-1).max() < 1e-9


def test_soft_argmax_of_a_sharp_peak_is_the_cell_centre():
    h = torch.full((2, 8, 8), -1e4)
    h[0, 2, 5] = 0.0  # row 2, column 5
    h[1, 7, 0] = 0.0
    assert torch.allclose(soft_argmax(h), torch.tensor([[5.5, 2.5], [0.5, 7.5]]))
    flat = torch.zeros(1, 4, 4)  # uniform: the middle
    assert torch.allclose(soft_argmax(flat), torch.tensor([[2.0, 2.0]]))


@pytest.mark.parametrize("kind", ["baseline", "fusion", "canonical"])
def test_models_give_2d_joints_per_view_and_gradients_reach_the_encoder(kind):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    rig = mvdata.Rig()
    samples = [mvdata.make_sample(mvdata.random_pose(rng), rig.azimuths(), rig, 32) for _ in range(3)]
    batch = tensors({k: np.stack([s[k] for s in samples]) for k in samples[0]})
    model = build(ModelSpec(kind=kind, image_size=32, channels=2, points=4, hidden=8))
    uv = model(batch["images"], batch["R"])
    assert uv.shape == (3, 4, 17, 2) and uv.dtype == torch.float32
    assert ((uv >= 0) & (uv <= 32)).all()  # soft-argmax stays inside the crop
    loss, e2, e3 = losses(model, batch, weight_3d=1.0)
    loss.backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0
    assert math.isfinite(e2) and math.isfinite(e3)


def test_triangulating_the_true_2d_joints_gives_the_3d_joints():
    rng = np.random.default_rng(4)
    rig = mvdata.Rig()
    s = [mvdata.make_sample(mvdata.random_pose(rng), rig.azimuths(), rig, 64) for _ in range(2)]
    batch = tensors({k: np.stack([x[k] for x in s]) for k in s[0]})
    X = triangulate(batch["uv"], batch["P"])
    assert (X - batch["X"]).norm(dim=-1).max() < 0.5  # mm; 2D joints are stored in float32


def test_mpjpe_equals_a_hand_computation():
    pred = np.zeros((2, 2, 3))
    target = np.array([[[3.0, 4, 0], [0, 0, 0]], [[0, 0, 1], [1, 2, 2]]])
    assert mpjpe(pred, target) == pytest.approx((5 + 0 + 1 + 3) / 4)


def test_in_plane_virtual_cameras_turn_the_truth_about_the_crop_centre():
    rng = np.random.default_rng(6)
    rig = mvdata.Rig()
    s = mvdata.make_sample(mvdata.random_pose(rng), rig.azimuths(), rig, 64)
    angles = (0.0, 30.0)
    R = novel.virtual_rotations(s["R"][None, 0], angles, "in").double().numpy()
    uv = novel.virtual_truth(s["joints3d"][None], s["K"][None, 0], s["R"][None, 0], s["t"][None, 0], R)[0]  # (2, 17, 2)
    # at angle 0 the virtual view is view 0's crop exactly (the data's own projection)
    assert np.abs(uv[0] - s["joints2d"][0]).max() < 1e-4
    assert np.allclose(uv[:, 0], 32.0, atol=1e-4)  # the pelvis stays at the crop centre
    a = math.radians(30.0)
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    # a turn about the axis through the pelvis: in the image a turn about the centre, up to the
    # perspective of the pelvis's off-axis direction (0.99 px at 30° for this sample, 64 px crop)
    err = np.abs(uv[1] - 32.0 - (uv[0] - 32.0) @ turn.T).max()
    assert 0 < err < 1.5


@pytest.mark.parametrize("phi", [30.0, 150.0])
def test_out_of_plane_virtual_cameras_see_the_pose_turned_about_the_vertical_through_the_pelvis(phi):
    """Out of plane, R = R_0 · R_z(φ): the virtual truth equals view 0's own projection (K_0, R_0, t_0)
    of the pose turned by R_z(φ) about the vertical axis through the pelvis, computed here in numpy
    (R_z(φ) · R_0 would be a turn of the image about the optical axis instead)."""
    rig = mvdata.Rig()
    s = mvdata.make_sample(mvdata.random_pose(np.random.default_rng(6)), rig.azimuths(), rig, 64)
    X = np.asarray(s["joints3d"], np.float64)  # (17, 3) world mm, z up
    R = novel.virtual_rotations(s["R"][None, 0], (phi,), "out").double().numpy()
    got = novel.virtual_truth(X[None], s["K"][None, 0], s["R"][None, 0], s["t"][None, 0], R)[0, 0]  # (17, 2)
    a = math.radians(phi)
    Rz = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    turned = X[0] + (X - X[0]) @ Rz.T
    cam = turned @ np.asarray(s["R"][0], np.float64).T + np.asarray(s["t"][0], np.float64)
    pix = cam @ np.asarray(s["K"][0], np.float64).T
    assert np.abs(got - pix[:, :2] / pix[:, 2:]).max() < 1e-3  # px; the rotations are float32 (5e-7 px)


def test_bad_model_requests_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="kind must be one of"):
        ModelSpec(kind="triangulate")
    with pytest.raises(ModelError, match="multiple of 16"):
        ModelSpec(image_size=40)
    with pytest.raises(ModelError, match="none.pt does not exist"):
        load_model(tmp_path / "none.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ModelError, match="empty.pt is empty"):  # the one checkpoint reader's errors
        load_model(tmp_path / "empty.pt")
    with pytest.raises(ModelError, match="only the canonical model"):
        build(ModelSpec(kind="fusion")).canonical(torch.zeros(1, 4, 64, 64, 3), torch.eye(3).expand(1, 4, 3, 3))


def test_tiny_data_train_evaluate_writes_every_metric_and_figure(tmp_path):
    """The workflow's layout: models trained on a train-only folder, evaluated on a test+unseen folder."""
    torch.set_num_threads(1)
    cfg = mvdata.MultiviewConfig(train=16, test=6, image_size=16, occluder_probability=0.5)
    train, shards = tmp_path / "train", tmp_path / "eval_shards"
    mvdata.write_multiview(train, cfg, splits=["train"])
    mvdata.write_multiview(shards, cfg, splits=["test", "unseen"])
    paths = {}
    for kind in ("baseline", "fusion", "canonical"):
        paths[kind] = tmp_path / kind / "model.pt"
        train_model(train, paths[kind], ModelSpec(kind=kind, image_size=16, channels=2, points=4, hidden=8),
                    epochs=1, batch_size=8, lr=1e-3, weight_3d=1.0, seed=0, device="cpu")
    out = tmp_path / "eval" / "metrics.json"
    kw = dict(samples=6, dlt_batch=8, dlt_repeat=1, figure_rows=2)
    result = evaluate(shards, paths, out, train_shards=train, **kw)
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    for key in ("mpjpe_mm", "mpjpe_mm_unseen_camera"):
        assert set(saved[key]) == {"baseline", "fusion", "canonical"} and all(v > 0 for v in saved[key].values())
    assert saved["samples"] == {"test": 6, "unseen": 6}
    assert set(saved["dlt"]["speedup"]) == {"0", "1", "3"}
    assert saved["dlt"]["dtype"] == TRIANGULATION_DTYPE  # what time_dlt and triangulate use (tests/test_dlt.py)
    assert saved["novel_view_px"]["out_of_plane"]["angles_deg"] == [0.0, 30.0, 150.0, 180.0]
    assert (out.parent / "novel_in_plane.png").is_file() and (out.parent / "novel_out_of_plane.png").is_file()
    # another test count: the training folder is untouched, the models are still accepted
    mvdata.write_multiview(shards, mvdata.MultiviewConfig(train=16, test=4, image_size=16, occluder_probability=0.5), splits=["test", "unseen"])
    assert evaluate(shards, paths, tmp_path / "eval4" / "metrics.json", train_shards=train, **kw)["samples"] == {"test": 4, "unseen": 4}
    # models trained on other shards (more training poses) are refused, nothing written
    other = tmp_path / "other"
    mvdata.write_multiview(other, mvdata.MultiviewConfig(train=17, test=6, image_size=16, occluder_probability=0.5), splits=["train"])
    with pytest.raises(DataError, match="was trained on the shards of"):
        evaluate(shards, paths, tmp_path / "eval_other" / "metrics.json", train_shards=other, **kw)
    # evaluation shards written with another seed do not belong to the training shards
    mvdata.write_multiview(tmp_path / "seed1", mvdata.MultiviewConfig(train=16, test=6, image_size=16, occluder_probability=0.5, seed=1), splits=["test"])
    with pytest.raises(DataError, match="config.seed 0 but the evaluation shards"):
        evaluate(tmp_path / "seed1", paths, tmp_path / "eval_other" / "metrics.json", train_shards=train, **kw)
    # without train_shards the evaluation folder itself is the one the models must come from
    with pytest.raises(DataError, match=r"trained on the shards of .*train/manifest.json .* but .*eval_shards/manifest.json has sha256"):
        evaluate(shards, paths, tmp_path / "eval_other" / "metrics.json", **kw)
    assert not (tmp_path / "eval_other").exists()


def test_reprojection_is_zero_for_consistent_views_and_a_hand_value_otherwise():
    from cnninterp.multiview.evaluate import reprojection_px

    P = mvdata.ring_cameras()[None]  # (1, 4, 3, 4)
    X = np.array([[[100.0, -200.0, 900.0]]])
    x = np.einsum("nvij,nkj->nvki", P, np.concatenate([X, [[[1.0]]]], -1))
    uv = x[..., :2] / x[..., 2:]
    assert reprojection_px(uv, X, P) == pytest.approx(0.0, abs=1e-9)
    shifted = uv.copy()
    shifted[0, 0, 0] += [3.0, 4.0]  # one view of four moved by 5 px
    assert reprojection_px(shifted, X, P) == pytest.approx(5.0 / 4)


def test_report_section_renders_the_metrics_and_figures(tmp_path):
    from types import SimpleNamespace

    from cnninterp.multiview import report
    from cnninterp.report.build import environment

    torch.set_num_threads(1)
    shards = tmp_path / "shards"
    mvdata.write_multiview(shards, mvdata.MultiviewConfig(train=8, test=4, image_size=16))
    paths = {}
    for kind in ("baseline", "fusion", "canonical"):
        paths[kind] = tmp_path / kind / "model.pt"
        train_model(shards, paths[kind], ModelSpec(kind=kind, image_size=16, channels=2, points=4, hidden=8),
                    epochs=1, batch_size=4, lr=1e-3, weight_3d=1.0, seed=0, device="cpu")
    results = tmp_path / "results"
    metrics = evaluate(shards, paths, results / "eval/multiview/metrics.json", samples=4, dlt_batch=4, dlt_repeat=1, figure_rows=1)

    def asset(*parts):
        path = tmp_path / "staging" / "/".join(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, "/".join(parts)

    ctx = SimpleNamespace(config={"multiview": {"enabled": True}}, results=results, asset=asset)
    data = report.render(ctx)
    html = environment().get_template(report.TEMPLATE).render(data=data)
    assert f"{metrics['mpjpe_mm']['canonical']:.1f}" in html and "Canonical fusion" in html
    assert "multiview/novel_out_of_plane.png" in html and (tmp_path / "staging/multiview/novel_in_plane.png").is_file()
    assert "30.2 mm" in html  # the paper's figure beside ours
