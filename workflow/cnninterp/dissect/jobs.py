"""How many shards one dissection job reads: per-shard jobs for clusters, fewer for small data.

Each job is a new process that pays the torch/torchvision import (about 4.5 s on a slow host), so
for small data several shards share one job; on a cluster, ``shards_per_job: 1`` spreads every
shard over its own job. Results do not depend on the grouping (tallies add, top-m sets merge).
"""

from __future__ import annotations

import math

# auto: a job holds about this many images (one shard at least)
AUTO_IMAGES_PER_JOB = 4000


def shards_per_job(manifest: dict, setting: int) -> int:
    """Shards per dissection job: ``setting`` when > 0, else (auto) as many whole shards as fit
    in AUTO_IMAGES_PER_JOB images given the manifest's largest shard (at least 1)."""
    if setting > 0:
        return setting
    largest = max((s["samples"] for split in manifest["splits"].values() for s in split["shards"]), default=1)
    return max(1, math.floor(AUTO_IMAGES_PER_JOB / max(largest, 1)))
