"""The detector rule is strict (Bau et al. 2017: a unit is a detector when IoU > 0.04): a unit at
IoU exactly 1/25 is not one, a unit at 26/625 = 0.0416 is, in the dissection summary
(dissect.labels) and in the ICNN part scores (icnn.evaluate.part_scores). Tallies set by hand."""

import numpy as np

from cnninterp.dissect.labels import iou_table, summarize
from cnninterp.dissect.states import LayerThresholds, TallyPart, Thresholds, TopImages
from cnninterp.dissect.tally import LayerTally
from cnninterp.icnn.evaluate import part_scores
from cnninterp.icnn.model import TOP_LAYER

CATS = ["part"]
VOCAB = {"primary": np.array([-1, 0, 0]), "names": np.array(["", "head", "leg"], dtype=object), "categories": CATS}


def _part() -> TallyPart:
    """Label 1 covers 25 pixels, label 2 625. Unit 0 is active on 1 pixel, inside label 1:
    IoU 1 / (1 + 25 - 1) = 1/25 with it, 0 with label 2. Unit 1 is active on 26 pixels, all inside
    label 2: IoU 26 / (26 + 625 - 26) = 26/625 with it, 0 with label 1."""
    layer = LayerTally(2, 3, 1)
    layer.inter[:] = [[0, 1, 0], [0, 0, 26]]
    layer.act_original[:] = layer.act_lite[:] = [[1], [26]]
    layer.act_total[:] = [1, 26]
    return TallyPart(10, np.array([0, 25, 625], np.int64), {TOP_LAYER: layer}, "digest")


def test_a_unit_at_exactly_the_threshold_is_not_a_detector():
    thresholds = Thresholds(10, 0.005, {TOP_LAYER: LayerThresholds((8, 8), np.full(2, 0.5, np.float32), TopImages(1))})
    table = iou_table(_part(), thresholds, VOCAB, [TOP_LAYER], "original")
    summary = summarize(table, [TOP_LAYER], CATS, 0.04, {TOP_LAYER: 2})
    units = summary[TOP_LAYER]["unit_labels"]
    assert [(u["label"], u["iou"]) for u in units] == [("head", 1 / 25), ("leg", 26 / 625)]
    assert [u["detector"] for u in units] == [False, True]
    assert summary[TOP_LAYER]["detectors"] == 1 and summary[TOP_LAYER]["unique_concepts"] == 1

    scores = part_scores(summary, 0.04)
    assert scores["part_detectors"] == 1 and scores["detectors_per_part"] == {"leg": 1}
    assert scores["mean_part_iou"] == (1 / 25 + 26 / 625) / 2
