"""Grouping media by unknown source (`sensorprint cluster`): groups, resume after SIGKILL, bad files, the CLI.

The set: 4 simulated cameras (the first two are same-model twins) × 5 images of 1024×768,
three flat-field and two natural scenes each; one of camera 0's is stored in portrait, one
of camera 2's is resized to 50% and recompressed; camera 1 has a sixth, a 640×480 crop from
the middle of its frame (a crop search never links: it stays single); plus one damaged file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sensorprint.cli import app
from sensorprint.prnu import Query
from sensorprint.prnu import cluster as method
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.store import clusters as store
from sensorprint.workflow.cluster import cluster, stored_groups

CAMERAS, IMAGES = 4, 5


def _write_set(root: Path) -> None:
    cameras = make_cameras(3, 2, width=1024, height=768, seed=1)[:CAMERAS]
    for c, camera in enumerate(cameras):
        for k in range(IMAGES):
            options: dict = {"flat": k < 3 or (c == 2 and k == 4)}
            if c == 0 and k == 4:
                options["orientation"] = 90
            if c == 2 and k == 4:
                options["scale"] = 0.5
            camera.save_jpeg(root / f"cam{c}_{k}.jpg", seed=100 * c + k, **options)
    cameras[1].save_jpeg(root / "crop1.jpg", seed=150, flat=True, crop=(192, 144, 640, 480))  # a crop: left single
    (root / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")


def _named_groups(case: Case) -> set[frozenset[str]]:
    return {frozenset(Path(p).name for p in g.paths) for g in stored_groups(case)}


TRUTH = {frozenset(f"cam{c}_{k}.jpg" for k in range(IMAGES)) for c in range(CAMERAS)} | {frozenset({"crop1.jpg"})}


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """The media, and a case clustered once from scratch (its groups and scores are the reference)."""
    root = tmp_path_factory.mktemp("cluster")
    media = root / "media"
    media.mkdir()
    _write_set(media)
    case = Case.create(root / "case")
    summary = cluster(case, [media], workers=1)
    case.close()
    return media, root / "case", summary


def test_simulated_set_is_grouped_by_camera(clustered):
    media, case_dir, summary = clustered
    with Case.open(case_dir, read_only=True) as case:
        assert _named_groups(case) == TRUTH  # twins apart, the portrait and the resized copy in their groups
    assert summary.files == CAMERAS * IMAGES + 2
    assert summary.errors == 1 and len(summary.error_lines) == 1
    line = summary.error_lines[0]
    assert "damaged.jpg" in line and "\n" not in line
    assert summary.threshold >= 60.0
    assert summary.candidates < summary.screened  # the signatures spared full scores


def test_pair_score_is_the_one_verify_gives(clustered):
    media, _, _ = clustered
    from sensorprint.workflow import verify

    a, b = media / "cam3_0.jpg", media / "cam3_1.jpg"
    verification = verify(a, str(b))
    assert verification.decision == "match"
    from sensorprint.workflow.options import SignalOptions
    from sensorprint.workflow.signals import query_signal

    signals = [query_signal(p, SignalOptions())[1] for p in (a, b)]
    assert method.pair_score(*signals).score == pytest.approx(verification.prnu.score, rel=1e-6)


def test_quantised_cache_keeps_the_residual():
    rng = np.random.default_rng(0)
    residual = rng.normal(0, 2.0, (64, 80)).astype(np.float32)
    q, step = method.quantise(residual)
    back = method.dequantise(q, step)
    assert q.dtype == np.int8
    assert np.corrcoef(back.ravel(), residual.ravel())[0, 1] > 0.999


def test_decision_threshold_grows_with_the_tests():
    assert method.decision_threshold(1, 1) == 60.0  # the customary floor
    few, many = method.decision_threshold(10**6, 10**7), method.decision_threshold(10**10, 10**7)
    assert 60.0 < few < many


def test_components_and_portrait_views():
    assert method.components(5, [(0, 3), (3, 4)]) == [[0, 3, 4], [1], [2]]
    portrait = np.arange(12, dtype=np.float32).reshape(4, 3)
    views = method.landscape_views(portrait)
    assert [v.shape for v in views] == [(3, 4), (3, 4)]
    assert np.array_equal(views[1], np.rot90(views[0], 2))
    q = Query(np.ones((8, 8), np.float32), None)
    assert method.one_medium_fingerprint(q) is q.residual  # a video aggregate is its own K


def test_candidate_pairs_meet_every_pair_of_views_once():
    """Only the upper half of the view-by-view products is made; the pairs are those of the whole matrix."""
    rng = np.random.default_rng(3)
    shared = rng.normal(size=(40, 48)).astype(np.float32)
    signatures = []
    for m in range(11):
        shape = (48, 40) if m % 4 == 1 else (40, 48)  # some portrait media: two views each
        a = rng.normal(size=shape).astype(np.float32)
        if m % 3 == 0:  # media 0, 3, 6, 9 share a pattern
            a += 0.5 * (shared if shape == (40, 48) else np.rot90(shared, 3))
        signatures.append(method.signature(a, side=32))
    rows, counts, owners = method.stack_signatures(signatures)
    z = method.correlation_z(rows, counts, rows, counts)
    expected = {}
    for u, v in zip(*np.nonzero(z >= 3.0), strict=True):
        a, b = int(owners[u]), int(owners[v])
        if a < b:
            expected[(a, b)] = max(expected.get((a, b), -np.inf), float(z[u, v]))
    got = method.candidate_pairs(method.stack_signatures(signatures), z_min=3.0, block=3)
    assert {(a, b) for a, b, _ in got} == set(expected) >= {(0, 3), (0, 9), (3, 6), (6, 9)}
    assert all(value == pytest.approx(expected[(a, b)]) for a, b, value in got)
    streamed = method.stack_signatures(iter(signatures), n_rows=len(rows))  # copied into place as they come
    assert all(np.array_equal(x, y) for x, y in zip(streamed, (rows, counts, owners), strict=True))
    with pytest.raises(ValueError, match="announced"):
        method.stack_signatures(iter(signatures), n_rows=len(rows) - 1)


def test_antialiased_resize_is_an_editors_bilinear():
    from PIL import Image

    k = np.random.default_rng(3).normal(size=(96, 128)).astype(np.float32)
    for size in ((64, 48), (80, 45), (100, 75)):
        editor = np.asarray(Image.fromarray(k, mode="F").resize(size, Image.Resampling.BILINEAR))
        assert np.allclose(method.resize_antialiased(k, size[::-1]), editor, atol=1e-5)


def test_pair_waves_score_a_forest_and_drop_linked_pairs():
    linked = method.UnionFind(6)
    linked.union(4, 5)
    candidates = [(0, 1, 9.0), (1, 2, 8.0), (0, 2, 7.0), (4, 5, 6.0), (2, 3, 5.0)]
    wave, later = method.pair_waves(candidates, linked)
    assert [p[:2] for p in wave] == [(0, 1), (1, 2), (2, 3)]  # (4, 5) already linked: never scored
    assert [p[:2] for p in later] == [(0, 2)]  # needed only if (0, 1) or (1, 2) does not link
    linked.union(0, 1)
    linked.union(1, 2)
    assert method.pair_waves(later, linked) == ([], [])


def test_pair_waves_leave_pairs_between_groups_to_the_group_stage():
    linked = method.UnionFind(7)
    candidates = [(0, 1, 9.0), (2, 3, 8.0), (1, 2, 7.0), (1, 4, 6.0), (5, 6, 5.0)]
    wave, later = method.pair_waves(candidates, linked)
    # (1, 2) would join two groups of two: it waits; a single medium (4) joining a group is scored
    assert [p[:2] for p in wave] == [(0, 1), (2, 3), (1, 4), (5, 6)]
    assert [p[:2] for p in later] == [(1, 2)]
    for i, j in ((0, 1), (2, 3), (1, 4), (5, 6)):
        linked.union(i, j)
    assert method.pair_waves(later, linked) == ([], [])  # both groups formed: their fingerprints decide
    failed = method.UnionFind(7)
    failed.union(0, 1)  # (2, 3) did not link: (1, 2) is a single medium joining a group, scored
    assert [p[:2] for p in method.pair_waves(later, failed)[0]] == [(1, 2)]


def test_large_pairs_are_scored_on_their_centre_window_first_and_both_looks_are_counted():
    rng = np.random.default_rng(5)
    shape = (2048, 2560)  # 5 window areas (4 is the smallest size given a window first)
    k = rng.normal(0, 0.005, shape).astype(np.float32)

    def photo(pattern):
        intensity = rng.uniform(60, 200, shape).astype(np.float32)
        return Query(intensity * pattern + rng.normal(0, 5, shape).astype(np.float32), intensity)

    a, b, other = photo(k), photo(k), photo(rng.normal(0, 0.005, shape).astype(np.float32))
    asked = []

    def reference():
        asked.append(1)
        return None

    same = method.windowed_pair_score(a, b, threshold=60.0, reference=reference)
    assert str(same.decision) == "match" and same.evidence.search_stage.startswith("centre window")
    assert same.evidence.n_positions == 2 and not asked  # the window's look and the whole's would-be look
    whole = method.pair_score(a, b, threshold=60.0)
    assert 0.12 * whole.score < same.score < 0.3 * whole.score  # a fifth of the pixels: about a fifth of the PCE
    different = method.windowed_pair_score(a, other, threshold=60.0, reference=reference)
    assert str(different.decision) != "match" and asked  # the window did not link: the whole images were compared
    assert different.evidence.n_positions == 2 and not different.evidence.search_stage.startswith("centre window")
    small = Query(a.residual[:1024, :1024], a.intensity[:1024, :1024])
    assert method.centre_windows(small, small) is None  # under 4 window areas: the whole images at once


def test_join_score_searches_full_views_only():
    rng = np.random.default_rng(5)
    k = rng.normal(size=(240, 320)).astype(np.float32)
    small = method.resize_antialiased(k, (120, 160))
    resized = Query(small + rng.normal(0, 2.0, small.shape).astype(np.float32), np.ones(small.shape, np.float32))
    found = method.join_score(resized, k, k_is_video=False, threshold=60.0)
    assert found.score > 200 and found.transform["scale"] == pytest.approx(0.5)
    # one aligned position at 50%, and the two portrait turns full-height at 2/3 (94 offsets each)
    assert found.evidence.n_positions == 1 + 2 * 94 and found.evidence.search_stage == "scale"
    crop = k[60:180, 80:240]  # native scale: searched only where it would be a full view (never as a crop)
    found = method.join_score(Query(crop.copy(), np.ones(crop.shape, np.float32)), k, k_is_video=False, threshold=60.0)
    assert found.score < 60 and found.evidence.n_positions < 200  # 120x160 of 240x320: the same views as above


KILLER = """
import sys
from pathlib import Path
from sensorprint.store import Case
from sensorprint.workflow.cluster import cluster
with Case.open(sys.argv[1]) as case:
    cluster(case, [Path(sys.argv[2])], workers=1)
"""


def _scores_in(case_dir: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{case_dir / 'case.sqlite'}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM cluster_pairs").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_group_fingerprints_are_kept_and_loaded_ones_score_as_estimated_ones(clustered):
    """Each group's fingerprint is kept in the case by the run, and the scoring tasks that load it get the very
    scores of one estimated again from the members."""
    from sensorprint.workflow import cluster as flow

    _, case_dir, _ = clustered
    with Case.open(case_dir, read_only=True) as case:
        group = next(g for g in store.groups(case) if len(g.members) >= 2)
        files = {f.id: f for f in store.files(case)}
        members = [str(store.cache_path(case, files[i])) for i in group.details["reference_members"]]
        kept = store.group_cache_path(case, group.details["key"])
        other = next(f for f in files.values() if f.status == "ok" and f.id not in group.members)
    assert kept.exists()
    queries = [(other.id, str(store.cache_path(case, other))), (group.members[0], members[0])]
    flow._groups.clear()
    loaded = flow.score_group(members, queries, "sensor", 60.0, str(kept))
    flow._groups.clear()
    estimated = flow.score_group(members, queries, "sensor", 60.0)
    assert [(i, m.score) for i, m in loaded] == [(i, m.score) for i, m in estimated]
    assert estimated[1][1].score >= 60.0 > estimated[0][1].score  # a member, and a file of another camera
    windows, arrays = flow.group_signatures(members, [(768, 1024)], 512, str(kept))
    assert arrays is None and windows  # already kept: not estimated again


def test_the_members_of_another_group_are_scored_only_until_its_merge_is_decided(clustered):
    """Camera 1 (camera 0's twin) has 5 media: against camera 0's group fingerprint, a merge needs 3 links; after
    3 misses it is out of reach and the other 2 are not scored. Camera 0's own media: 3 links decide it."""
    from sensorprint.workflow import cluster as flow

    _, case_dir, _ = clustered
    with Case.open(case_dir, read_only=True) as case:
        files = {Path(f.path).name: f for f in store.files(case)}
        group = next(g for g in store.groups(case) if files["cam0_0.jpg"].id in g.members)
        by_id = {f.id: f for f in files.values()}
        members = [str(store.cache_path(case, by_id[i])) for i in group.details["reference_members"]]
        kept = str(store.group_cache_path(case, group.details["key"]))
        twin = [(files[f"cam1_{k}.jpg"].id, str(store.cache_path(case, files[f"cam1_{k}.jpg"]))) for k in range(5)]
        own = [(i, str(store.cache_path(case, by_id[i]))) for i in group.members]
    rule = method.LinkRule(1000)

    def scored(queries: list, needed: int) -> list:
        return flow.score_group(members, queries, "sensor", 60.0, kept, rule=rule, needed=needed)

    every = scored(twin, 0)
    assert len(every) == 5 and not any(rule.links_match(m) for _, m in every)
    assert [i for i, _ in scored(twin, 3)] == [i for i, _ in twin[:3]]  # 3 misses: 3 links of 5 are out of reach
    assert len(scored(twin, 6)) == 1  # out of reach from the start: one score, for the group's near neighbours
    linked = scored(own, 3)
    assert len(linked) == 3 and all(rule.links_match(m) for _, m in linked)


def test_resume_after_sigkill_gives_the_same_groups_and_no_doubled_score(clustered, tmp_path):
    media, reference_dir, _ = clustered
    case_dir = tmp_path / "case"
    Case.create(case_dir).close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    child = subprocess.Popen([sys.executable, "-c", KILLER, str(case_dir), str(media)], env=env)
    deadline = time.monotonic() + 60
    while _scores_in(case_dir) < 5 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    killed = child.poll() is None
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert killed, "the child finished before it could be killed"
    with Case.open(case_dir) as case:
        partial = {(s.key, s.a_id, s.b_id) for s in store.scores(case)}
        assert 0 < len(partial)
        summary = cluster(case, [media], workers=1)
        assert summary.skipped > 0  # cached files were not read again
        after = store.scores(case)
        assert partial <= {(s.key, s.a_id, s.b_id) for s in after}  # nothing lost
        groups = _named_groups(case)
    with Case.open(reference_dir, read_only=True) as reference:
        assert groups == _named_groups(reference)
        assert len(after) == len(store.scores(reference))  # none doubled, none missing


def test_cli_cluster_clusters_and_enroll_from_cluster(clustered, tmp_path):
    media, reference_dir, _ = clustered
    case_dir = tmp_path / "case"
    shutil.copytree(reference_dir, case_dir)
    runner = CliRunner()
    listed = runner.invoke(app, ["clusters", str(case_dir)])
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("group ") >= CAMERAS and "cam3_4.jpg" in listed.output
    with Case.open(case_dir, read_only=True) as case:
        group = next(g for g in stored_groups(case) if any("cam3_" in p for p in g.paths))
    enrolled = runner.invoke(
        app, ["enroll", str(case_dir), "--device", "camera three", "--from-cluster", str(group.id)]
    )
    assert enrolled.exit_code == 0, enrolled.output
    assert "5 reference files added" in enrolled.output  # camera 3's five
    again = runner.invoke(app, ["cluster", str(case_dir), str(media), "--workers", "1"])
    assert again.exit_code == 0, again.output
    assert "matches enrolled device camera three" in again.output
    assert "damaged.jpg" in again.output  # its one error line, again
    missing = runner.invoke(app, ["enroll", str(case_dir), "--device", "x", "--from-cluster", "999999"])
    assert missing.exit_code == 2 and "999999" in missing.output


def test_report_has_a_section_per_group(clustered, tmp_path):
    import json

    from jsonschema import Draft202012Validator

    from sensorprint.report import write_report

    _, case_dir, _ = clustered
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "report.schema.json").read_text())
    with Case.open(case_dir, read_only=True) as case:
        html = Path(write_report(case, "html", tmp_path / "report.html", threshold=60.0)).read_text()
        data = json.loads(Path(write_report(case, "json", tmp_path / "report.json", threshold=60.0)).read_text())
    section = data["clusters"]
    assert len(section["groups"]) == CAMERAS and [Path(m["path"]).name for m in section["singletons"]] == ["crop1.jpg"]
    group = section["groups"][0]
    assert len(group["scores"]) == len(group["members"]) and all(len(m["sha256"]) == 64 for m in group["members"])
    assert any(v is not None and v >= 60 for row in group["scores"] for v in row)
    assert list(Draft202012Validator(schema).iter_errors(data)) == []
    assert html.count('id="cluster-') == CAMERAS and "data:image/png;base64," in html
    assert all(m["thumbnail"] for g in section["groups"] for m in g["members"])  # one per member, as read
    assert html.count('class="thumb"') == CAMERAS * IMAGES


def test_verify_video_video_and_video_image_use_the_pair_score(tmp_path):
    """`verify A B` between two videos and between a video and an image: the clustering's pair score, either order."""
    from sensorprint.workflow import verify
    from sensorprint.workflow.options import SignalOptions
    from sensorprint.workflow.signals import query_signal

    a, b = make_cameras(1, 2, width=1024, height=768, seed=3)
    video = dict(seconds=2, size=(640, 360), bitrate=3_000_000, threads=1)
    a.record_video(tmp_path / "a0.mp4", seed=1, **video)
    a.record_video(tmp_path / "a1.mp4", seed=2, **video)
    b.record_video(tmp_path / "b0.mp4", seed=3, **video)
    a.save_jpeg(tmp_path / "a.jpg", flat=True, seed=4)
    signals = {p.name: query_signal(p, SignalOptions())[1] for p in tmp_path.iterdir()}
    for x, y in (("a0.mp4", "a.jpg"), ("a0.mp4", "a1.mp4")):
        forward, backward = verify(tmp_path / x, str(tmp_path / y)), verify(tmp_path / y, str(tmp_path / x))
        pair = method.pair_score(signals[x], signals[y])
        assert forward.prnu.score == pytest.approx(backward.prnu.score, rel=1e-6)
        assert forward.prnu.score == pytest.approx(pair.score, rel=1e-6)
        assert pair.score >= 60.0  # same camera: the video frames found in the photo's sensor (scaled, cropped)
    assert method.pair_score(signals["a0.mp4"], signals["a1.mp4"]).evidence.n_positions == 1  # frames as stored
    assert method.pair_score(signals["b0.mp4"], signals["a.jpg"]).score < 60.0  # another camera
    assert method.pair_score(signals["b0.mp4"], signals["a0.mp4"]).score < 60.0


def test_enroll_from_cluster_refuses_a_member_changed_since_it_was_grouped(tmp_path):
    from sensorprint.errors import CaseError
    from sensorprint.hashing import sha256_of_file
    from sensorprint.workflow.cluster import cluster_paths

    files = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    for k, path in enumerate(files):
        path.write_bytes(b"member %d" % k)
    with Case.create(tmp_path / "case") as case:
        run_id = case.start_run("cluster", {})
        ids = [
            store.save_file(case, {"path": str(p), "sha256": sha256_of_file(p), "status": "ok"}, None, run_id)
            for p in files
        ]
        store.save_groups(case, run_id, [{"members": ids}])
        group = store.groups(case)[0]
        assert cluster_paths(case, group.id) == files
        files[1].write_bytes(b"another medium")
        with pytest.raises(CaseError, match="b.jpg changed since it was grouped"):
            cluster_paths(case, group.id)
        files[1].unlink()
        with pytest.raises(CaseError, match="b.jpg"):
            cluster_paths(case, group.id)
