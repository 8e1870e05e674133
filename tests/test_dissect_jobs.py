"""How shards are grouped into dissection jobs."""

from cnninterp.dissect.jobs import AUTO_IMAGES_PER_JOB, shards_per_job


def manifest(*sizes):
    return {"splits": {"train": {"shards": [{"name": f"train-{i:06d}.tar", "samples": n} for i, n in enumerate(sizes)]}}}


def test_a_set_value_is_used_as_is():
    assert shards_per_job(manifest(600, 600, 240), 1) == 1
    assert shards_per_job(manifest(600, 600, 240), 5) == 5


def test_auto_fills_a_job_with_whole_shards_up_to_the_image_budget():
    assert shards_per_job(manifest(600, 600, 240), 0) == AUTO_IMAGES_PER_JOB // 600
    assert shards_per_job(manifest(1000) , 0) == AUTO_IMAGES_PER_JOB // 1000
    assert shards_per_job(manifest(2 * AUTO_IMAGES_PER_JOB), 0) == 1  # a shard larger than the budget is still one job
