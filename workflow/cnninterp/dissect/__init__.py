"""Network Dissection (Bau et al., CVPR 2017): exact thresholds, IoU tallies, unit labels.

Stages, each runnable per shard and mergeable: ``quantiles`` (the one model pass: per-unit top
values, top images, and the activation cache of ``cache``/``candidates``) -> ``thresholds``
(merge, exact T_k) -> ``tally`` (per-shard counts, upsampled cell by cell in ``bilinear``, its
loops compiled in ``tally_kernels``) -> ``gather`` (sum, IoU, labels, Parquet + summary).
The per-shard stages are ``engine`` (the code of the jobs that run the model), the gather is
``gather`` (with ``chance`` and ``labels``, code of the gather jobs only: an edit of them reruns
no model pass); ``pipeline.dissect`` runs them all in one process. What one stage hands the next
is a typed, mergeable state (``states``), written to disk by ``statefile`` (format tag, kind, layout version).
"""
