"""Location instability (Zhang, Wu, Zhu 2018, Sec. 4.3), pure numpy."""

from __future__ import annotations

import numpy as np


def location_instability(inferred, landmarks, visible, diagonal: float, best: int = 1) -> float:
    """Mean location instability over filters.

    inferred:  (F, M, 2) float, per filter the inferred (x, y) image location on its top-M images
               (receptive-field centre of the argmax position);
    landmarks: (F, M, L, 2) float, the L true landmarks of those same images;
    visible:   (F, M, L) bool, landmark visibility (hidden ones are left out of the std);
    diagonal:  image diagonal in pixels.
    Per filter and landmark: std over images of ‖inferred − landmark‖ / diagonal; the filter's
    score is the mean over its ``best`` landmarks of lowest instability (its part), then the
    mean over filters. Returns a float.
    """
    inferred = np.asarray(inferred, dtype=np.float64)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    dist = np.linalg.norm(landmarks - inferred[:, :, None, :], axis=-1)  # (F, M, L)
    scores = []
    for f in range(dist.shape[0]):
        per_landmark = []
        for lm in range(dist.shape[2]):
            d = dist[f, visible[f, :, lm], lm]
            if d.size >= 2:
                per_landmark.append(d.std() / diagonal)
        if per_landmark:
            scores.append(float(np.mean(sorted(per_landmark)[:best])))
    if not scores:
        raise ValueError("location_instability: no filter has a landmark visible on two or more of its top images")
    return float(np.mean(scores))
