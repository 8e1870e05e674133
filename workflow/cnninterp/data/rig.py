"""The multiview cameras' ring (``Rig``) and the check of the unseen split's moved camera.

A module of its own (numpy only) because the config check runs ``check_heldout_camera`` before any
job: through ``data.multiview`` the whole data module would become code of every job that checks
its options against the config (trainings, dissections).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError

FOCAL = 1145.0


@dataclass(frozen=True)
class Rig:
    """Camera layout: ``views`` cameras at azimuths ``start_deg + k·360/views`` on the circle."""

    views: int = 4
    radius_mm: float = 4500.0
    height_mm: float = 1500.0
    start_deg: float = 45.0
    focal_px: float = FOCAL

    def azimuths(self) -> np.ndarray:
        """Azimuths in degrees of the rig's cameras, float64 (views,)."""
        return self.start_deg + 360.0 * np.arange(self.views) / self.views


def check_heldout_camera(views: int, heldout_view: int, heldout_azimuth_deg: float) -> None:
    """DataError unless the unseen split's moved camera is valid for a rig of ``views`` cameras:
    ``0 <= heldout_view < views`` and ``heldout_azimuth_deg`` at least 1 degree from every training
    camera (``Rig(views).azimuths()``). The config check runs it too, before any job."""
    if not 0 <= heldout_view < views:
        raise DataError(f"multiview: needs 0 <= heldout_view < views, got views={views}, heldout_view={heldout_view}")
    seen = Rig(views=views).azimuths()
    if np.min(np.abs((seen - heldout_azimuth_deg + 180) % 360 - 180)) < 1.0:
        raise DataError(f"multiview: heldout_azimuth_deg {heldout_azimuth_deg} coincides with a training camera ({list(seen)})")
