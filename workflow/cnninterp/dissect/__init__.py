"""Network Dissection (Bau et al., CVPR 2017): exact thresholds, IoU tallies, unit labels.

Stages, each runnable per shard and mergeable: ``quantiles`` (per-unit top values) ->
``thresholds`` (merge, exact T_k) -> ``tally`` (per-shard counts) -> ``gather`` (sum, IoU,
labels, Parquet + summary). ``engine.dissect`` runs them all in one process.
"""
