"""The adaptive read of query videos: frame order, batches, the stopping rule, the looks and the video predictor.

Pure functions on small arrays, plus one workflow test on two simulated clips: a weak clip
(dark, 1 Mbit/s) gets more frames than a strong one of the same camera.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sensorprint.media.video import frame_packets, read_frames_at
from sensorprint.prnu import PreparedFingerprint, Query, compare
from sensorprint.prnu.adaptive import all_settled, batches, coded_share, frame_order, settled
from sensorprint.prnu.decision import FingerprintStrength, predicted_video_pce, search_threshold
from sensorprint.results import Decision, Match, Method, PrnuEvidence
from sensorprint.simulate import make_cameras, reencode_video


def test_frame_order_keyframes_first_then_the_largest_frames():
    keys = [True, False, False, True, False, False, True, False, False, True]
    sizes = [900, 50, 300, 800, 300, 10, 850, 70, 200, 700]
    order = frame_order(keys, sizes, first=[0, 9])
    assert order[:2] == [0, 9]  # the strategy's frames stay first
    assert sorted(order[2:4]) == [3, 6]  # then the other keyframes
    assert order[4:] == [2, 4, 8, 7, 1, 5]  # then by decreasing size, ties by position
    assert sorted(order) == list(range(10))
    assert frame_order(keys, sizes, first=[0, 9]) == order  # deterministic


def test_frame_order_spreads_keyframes_over_the_clip():
    keys = [i % 10 == 0 for i in range(100)]
    order = frame_order(keys, [1] * 100, first=[0])
    assert order[1] == 90  # the keyframe farthest from frame 0
    assert order[2] == 40 or order[2] == 50
    with pytest.raises(ValueError):
        frame_order([True], [1, 2])


def test_batches_double_and_respect_the_cap():
    order = list(range(100, 0, -1))
    cut = batches(order, 5)
    assert [len(b) for b in cut] == [5, 5, 10, 20, 40, 20]
    assert all(b == sorted(b) for b in cut)  # decoded forward
    assert sum(cut, []) and sorted(sum(cut, [])) == sorted(order)
    assert [len(b) for b in batches(order, 5, cap=12)] == [5, 5, 2]
    assert batches(order, 5, cap=0) == []


def test_coded_share_is_a_weight_factor():
    assert coded_share(300, 1200) == pytest.approx(0.25)
    assert coded_share(2000, 1000) == 1.0
    assert coded_share(10, 0) == 1.0


def _match(decision: Decision, reason: str | None = None, **evidence) -> Match:
    return Match(Method.PRNU, "cam", 1.0, decision, evidence=PrnuEvidence(reason=reason, **evidence))


def test_stopping_rule():
    assert settled(_match(Decision.MATCH))
    assert settled(_match(Decision.NO_MATCH))
    assert not settled(_match(Decision.INCONCLUSIVE))  # too weak so far: more frames may decide
    assert settled(_match(Decision.INCONCLUSIVE, reason="the query is larger than the fingerprint"))
    weak = dict(weak_fingerprint=True, n_positions=4_000)  # a weak fingerprint searched: capped, frames cannot help
    assert settled(_match(Decision.INCONCLUSIVE, **weak))
    assert not settled(_match(Decision.INCONCLUSIVE, weak_fingerprint=True, n_positions=1))  # aligned: it can match
    assert all_settled([_match(Decision.MATCH), _match(Decision.NO_MATCH)])
    assert not all_settled([_match(Decision.MATCH), _match(Decision.INCONCLUSIVE)])


def _pair(noise: float, seed: int = 0, shape=(128, 160)):
    rng = np.random.default_rng(seed)
    k = rng.normal(0, 1, shape).astype(np.float32)
    query = Query((k + rng.normal(0, noise, shape)).astype(np.float32), None)
    return k, query


def test_video_predictor_grows_with_a_cleaner_aggregate():
    k, strong = _pair(3.0)
    _, weak = _pair(30.0, seed=1)
    prepared = PreparedFingerprint(k)
    sure = FingerprintStrength(2, 0.9)
    high, low = predicted_video_pce(strong, prepared, sure), predicted_video_pce(weak, prepared, sure)
    assert high > 10 * low > 0
    assert predicted_video_pce(Query(strong.residual, np.ones_like(k)), prepared, sure) is None  # an image
    assert predicted_video_pce(strong, PreparedFingerprint(k[:64]), sure) is None  # another size
    assert predicted_video_pce(strong, prepared, None) is None


def test_weak_video_aggregate_is_inconclusive_and_looks_raise_the_threshold():
    k, strong = _pair(1.0, seed=3)
    rng = np.random.default_rng(9)
    strength = FingerprintStrength(2, 0.9)
    weak_other = Query(rng.normal(0, 60, k.shape).astype(np.float32), None)
    clean_other = Query(rng.normal(0, 1, k.shape).astype(np.float32), None)
    assert compare(weak_other, k, k_is_video=True, strength=strength).decision == Decision.INCONCLUSIVE
    assert compare(clean_other, k, k_is_video=True, strength=strength).decision == Decision.NO_MATCH
    once = compare(strong, k, k_is_video=True, strength=strength)
    again = compare(strong, k, k_is_video=True, strength=strength, looks=4)
    assert once.evidence.n_positions == 1 and again.evidence.n_positions == 4
    assert again.decision == Decision.MATCH and again.score == once.score
    assert again.evidence.threshold_at_search == pytest.approx(search_threshold(60.0, 4), abs=1e-3)
    assert again.evidence.threshold_at_search > once.evidence.threshold_at_search == 60.0
    assert again.evidence.log10_p_fa > once.evidence.log10_p_fa


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    camera = make_cameras(1, 1, seed=3, width=400, height=300)[0]
    path = tmp_path_factory.mktemp("adaptive") / "clip.mp4"
    return camera.record_video(path, seconds=1, size=(320, 180), fps=20, gop=5, bitrate=1_500_000, seed=1)


def test_frame_packets_and_read_frames_at(clip):
    keys, sizes = frame_packets(clip)
    assert len(keys) == len(sizes) == 20
    assert [i for i, key in enumerate(keys) if key] == [0, 5, 10, 15]
    key_sizes = [s for s, key in zip(sizes, keys, strict=True) if key]
    assert np.mean(key_sizes) > np.mean([s for s, key in zip(sizes, keys, strict=True) if not key])
    frames = list(read_frames_at(clip, [13, 2, 7, 99]))
    assert [f.index for f in frames] == [2, 7, 13]  # in presentation order, outside positions ignored
    again = list(read_frames_at(clip, [7]))
    assert np.array_equal(again[0].pixels, frames[1].pixels)  # the same frame however it is reached
    copy = reencode_video(clip, clip.with_name("social.mp4"), bitrate=300_000)
    assert sum(frame_packets(copy)[1]) < sum(sizes)


def test_weak_clip_gets_more_frames_than_a_strong_one(tmp_path):
    from sensorprint.store import Case
    from sensorprint.workflow import SignalOptions, enroll
    from sensorprint.workflow.scan import enrolled_fingerprints
    from sensorprint.workflow.signals import query_and_match

    cams = make_cameras(1, 2, seed=4, width=400, height=300)
    video = dict(size=(320, 180), fps=20, gop=5, seconds=1.5)
    case = Case.create(tmp_path / "case")
    for camera in cams:
        for s, kind in enumerate(("wall", "sky")):
            camera.record_video(tmp_path / camera.name / f"ref{s}.mp4", seed=s, scene_kind=kind, **video)
        enroll(case, camera.name, [tmp_path / camera.name], options=SignalOptions(frame_strategy="even", n_frames=30))
    devices = enrolled_fingerprints(case)
    case.close()
    strong = cams[0].record_video(tmp_path / "strong.mp4", seed=10, scene_kind="wall", bitrate=4_000_000, **video)
    weak = cams[0].record_video(
        tmp_path / "weak.mp4", seed=11, scene_kind="photo", bitrate=150_000, exposure=0.15, **video
    )
    options = SignalOptions(frame_strategy="even_keyframes", n_frames=2)
    used = {}
    for path in (strong, weak):
        facts, rows = query_and_match(path, devices, {}, options, 60.0)
        assert not facts.error
        assert all(r.decision != Decision.MATCH for r in rows if r.target != cams[0].name)
        used[path.name] = max(r.evidence.frames_used for r in rows)
        assert used[path.name] == len(facts.frames)
        fixed = query_and_match(
            path, devices, {}, SignalOptions(frame_strategy="even_keyframes", n_frames=2, adaptive_frames=False), 60.0
        )
        assert max(r.evidence.frames_used for r in fixed[1]) == 2
    assert used["strong.mp4"] == 2  # decided on the first frames: today's cost
    assert used["weak.mp4"] > used["strong.mp4"]
    again = query_and_match(weak, devices, {}, options, 60.0)[1]
    assert [(r.target, r.score, str(r.decision)) for r in again] == [
        (r.target, r.score, str(r.decision)) for r in query_and_match(weak, devices, {}, options, 60.0)[1]
    ]  # reproducible


def test_a_settled_device_is_not_decided_again(clip, monkeypatch):
    """Only the undecided devices are decided on each new batch; a settled one keeps its look's answer and frames."""
    from sensorprint.workflow import SignalOptions, signals

    calls: list[tuple[str, int]] = []

    def fake_match_device(signal, refs, hint, threshold, *, orientations="sensor", looks=1):
        device = refs[0]
        calls.append((device, looks))
        decision = Decision.NO_MATCH if device == "early" or looks >= 3 else Decision.INCONCLUSIVE
        return Match(Method.PRNU, device, float(looks), decision, evidence=PrnuEvidence())

    monkeypatch.setattr(signals, "match_device", fake_match_device)
    options = SignalOptions(frame_strategy="even_keyframes", n_frames=2, frame_search=False)
    facts, signal = signals.query_signal(clip, options, clean_video=False)
    first = len(facts.frames)
    found = {
        m.target: m
        for m in signals.match_video(clip, facts, signal, {"early": ["early"], "late": ["late"]}, {}, 60.0, options)
    }
    assert [c for c in calls if c[0] == "early"] == [("early", 1)]
    assert [c[1] for c in calls if c[0] == "late"] == [1, 2, 3]
    assert found["early"].evidence.frames_used == found["early"].evidence.frames_decided == first
    assert found["late"].evidence.frames_used == found["late"].evidence.frames_decided == len(facts.frames) > first
    assert found["late"].score == 3.0


def test_verify_between_two_videos_reads_more_frames_while_undecided(tmp_path):
    """`verify A B` for two clips reads both adaptively, as a scan does: more frames, a higher true-pair PCE."""
    from sensorprint.workflow import ScanOptions, SignalOptions
    from sensorprint.workflow.verify import verify

    camera = make_cameras(1, 1, seed=5, width=400, height=300)[0]
    video = dict(size=(320, 180), fps=20, gop=5, seconds=1.5, bitrate=200_000, exposure=0.5, scene_kind="sky")
    a = camera.record_video(tmp_path / "a.mp4", seed=1, **video)
    b = camera.record_video(tmp_path / "b.mp4", seed=2, **video)
    first = SignalOptions(frame_strategy="even_keyframes", n_frames=2)
    fixed = verify(a, str(b), options=ScanOptions(signal=replace(first, adaptive_frames=False))).prnu
    grown = verify(a, str(b), options=ScanOptions(signal=first)).prnu
    assert fixed.evidence.frames_used == 2 and fixed.decision != Decision.MATCH, fixed
    assert grown.evidence.frames_used > 2 and grown.score > fixed.score
    assert grown.decision == Decision.MATCH and grown.evidence.n_positions > fixed.evidence.n_positions  # looks counted
