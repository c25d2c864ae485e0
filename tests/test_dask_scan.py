"""A scan runs unchanged on a Dask cluster (here a local one on loopback)."""

from __future__ import annotations

import pytest

from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow import enroll, scan

distributed = pytest.importorskip("distributed")


def test_scan_on_a_dask_cluster_gives_the_local_answers(tmp_path):
    cameras = make_cameras(n_models=1, units_per_model=2, width=640, height=480, seed=3)
    seized = tmp_path / "seized"
    for camera in cameras:
        for i in range(8):
            camera.save_jpeg(tmp_path / "refs" / camera.name / f"flat{i}.jpg", flat=True, seed=i)
        camera.save_jpeg(seized / f"{camera.name}.jpg", seed=50)
    with (
        Case.create(tmp_path / "case") as case,
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
    ):
        for camera in cameras:
            enroll(case, camera.name, [tmp_path / "refs" / camera.name], scheduler=cluster.scheduler_address)
        summary = scan(case, [seized], scheduler=cluster.scheduler_address)
        assert (summary.files, summary.scanned, summary.errors) == (2, 2, 0)
        for medium in case.list_media(role="evidence"):
            best = max(case.results(medium.id, method="prnu"), key=lambda row: row.score)
            assert medium.path.endswith(f"{best.target}.jpg") and best.decision == "match"


def test_scan_on_a_dask_cluster_classifies_with_the_case_network(tmp_path):
    """Workers in other processes load the case's network themselves and store what it answers."""
    from sensorprint.learn import load_classifier
    from sensorprint.media import read_image
    from sensorprint.workflow.train import train

    cameras = make_cameras(n_models=2, units_per_model=1, width=512, height=384, seed=5)
    seized = tmp_path / "seized"
    for camera in cameras:
        for i in range(4):
            camera.save_jpeg(tmp_path / "refs" / camera.name / f"ref{i}.jpg", flat=i % 2 == 0, seed=i)
        camera.save_jpeg(seized / f"{camera.name}.jpg", seed=60)
    with Case.create(tmp_path / "case") as case:
        for camera in cameras:
            enroll(case, camera.name, [tmp_path / "refs" / camera.name], workers=1)
        train(case, target="device", epochs=1, units_per_file=8)
        with distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            summary = scan(case, [seized], scheduler=cluster.scheduler_address)
        assert (summary.files, summary.scanned, summary.errors) == (2, 2, 0)
        network = case.latest_model("device")
        classifier = load_classifier(network.path, backend="torch")
        for medium in case.list_media(role="evidence"):
            stored = {r.target: r.score for r in case.results(medium.id, method="cnn", target_kind="device")}
            expected = classifier.predict_image(read_image(medium.path).pixels).probabilities
            assert stored == pytest.approx(expected, abs=1e-4)
