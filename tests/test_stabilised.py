"""Stabilised video: the per-frame similarity search (prnu.stabilised), its threshold, evidence and simulation.

Synthetic frames: a smooth random sensor pattern K seen through a different translation
(and, for some, rotation) per frame and a common scale, plus strong noise, as electronic
stabilisation makes them; the search must find the scale, decide a match with a threshold
that counts every transform searched, say the video is stabilised, and reject another
camera's pattern.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from sensorprint.prnu.decision import search_threshold
from sensorprint.prnu.stabilised import (
    SearchPlan,
    StabilisedFrame,
    compare_stabilised,
    nominal_scale,
    search_frames,
    union_threshold,
    warp,
    warp_fingerprint,
)
from sensorprint.results import Decision, Match, PrnuEvidence, Stabilisation
from sensorprint.workflow.signals import FingerprintRef, QuerySignal, match_devices

SHAPE = (180, 320)  # frame size (rows, cols)
SCALE = 1.05  # frame pixels per fingerprint pixel: the stabilised crop is zoomed in


def _pattern(seed: int, shape=(200, 340)) -> np.ndarray:
    k = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return ndimage.gaussian_filter(k, 0.6).astype(np.float32)  # an ISP-scaled PRNU is not white


def _frames(k: np.ndarray, n: int = 4, seed: int = 0, rotations=(0.0, 0.0, 0.0, 0.0)) -> list[StabilisedFrame]:
    rng = np.random.default_rng(seed)
    border = 12
    out = []
    for i in range(n):
        big = warp_fingerprint(k, SHAPE, SCALE, rotations[i % len(rotations)], border)
        dy, dx = (int(v) for v in rng.integers(-8, 9, size=2))
        prnu = big[border + dy : border + dy + SHAPE[0], border + dx : border + dx + SHAPE[1]]
        noise = rng.standard_normal(SHAPE).astype(np.float32) * np.float32(6.0 * prnu.std())
        out.append(StabilisedFrame((prnu + noise).astype(np.float32), index=30 * i, keyframe=True))
    return out


def test_union_threshold_is_the_search_threshold_in_logarithms():
    for n in (1, 1_000, 1_000_000, 10**12):
        assert union_threshold(60.0, math.log(n)) == pytest.approx(search_threshold(60.0, n), abs=0.05)
    assert union_threshold(60.0, 700.0) > union_threshold(60.0, 70.0) > 60.0  # beyond what floats count


def test_nominal_scale_is_where_the_frame_fits_the_sensor_at_full_width_or_height():
    assert nominal_scale((720, 1280), (1200, 1600)) == pytest.approx(0.8)  # 16:9 video of a 4:3 sensor
    assert nominal_scale((720, 1280), (720, 1280)) == 1.0
    assert nominal_scale((1280, 720), (1200, 1600)) is None  # portrait frames of a landscape sensor


def test_separable_warp_equals_the_affine_warp():
    k = _pattern(1, (60, 80))
    separable = warp(k, (40, 60), 1.07, 0.0, 3)
    affine = warp_fingerprint(k, (40, 60), 1.07, 0.0, 3)
    assert separable.shape == affine.shape == (46, 66)
    np.testing.assert_allclose(separable, affine, atol=1e-4)


def test_search_finds_the_scale_decides_and_says_the_video_is_stabilised():
    k = _pattern(2)
    frames = _frames(k, rotations=(0.0, 0.0, 0.3, 0.0))
    found = search_frames(k, frames, SearchPlan(translation_share=0.04), threshold=60.0)
    assert found.stage == "frames"
    assert found.pce >= union_threshold(60.0, found.log_n)
    assert abs(found.fits[0].transform.scale / SCALE - 1) < 0.003
    assert found.frames_decided <= len(frames)
    assert found.stabilised is True  # translations (and a rotation) differ from frame to frame
    other = search_frames(_pattern(3), frames, SearchPlan(translation_share=0.04), threshold=60.0)
    assert other.pce < union_threshold(60.0, other.log_n)


def test_evidence_of_a_frame_by_frame_match_round_trips_and_older_evidence_loads():
    evidence = PrnuEvidence(
        n_positions=10**40,
        stabilisation=Stabilisation.STABILISED,
        frame_transforms=({"frame": 0, "keyframe": True, "pce": 120.0, "scale": 1.05, "rotation": 0.0},),
        frames_decided=1,
    )
    stored = evidence.to_dict()
    assert stored["stabilisation"] == "stabilised" and stored["frame_transforms"][0]["scale"] == 1.05
    assert PrnuEvidence.from_dict(stored) == evidence
    assert PrnuEvidence.from_dict({"n_positions": 1}).stabilisation is None


def test_match_devices_searches_frame_by_frame_only_when_the_aggregate_matches_nothing(tmp_path):
    k_true, k_other = _pattern(4), _pattern(5)
    refs = {}
    for name, k in (("phone", k_true), ("other", k_other)):
        path = tmp_path / f"{name}.npy"
        np.save(path, k)
        refs[name] = [FingerprintRef(name, 1, str(path), k.shape, "video", n_media=40, quality=0.5)]
    frames = _frames(k_true, n=3, seed=7)
    aggregate = np.mean([f.wi for f in frames], axis=0).astype(np.float32)  # blurred: frames misaligned
    signal = QuerySignal(aggregate, None, cleaned=False, frames=frames)
    found = {m.target: m for m in match_devices(signal, refs, {}, 60.0)}
    phone = found["phone"]
    assert isinstance(phone, Match) and phone.decision == Decision.MATCH, phone
    assert phone.evidence.frames_decided >= 1 and phone.evidence.frame_transforms
    assert phone.evidence.search_stage.startswith("per-frame")
    assert phone.evidence.threshold_at_search > 60.0 and phone.transform is None  # never remembered as a hint
    assert found["other"].decision != Decision.MATCH


def test_simulated_stabilisation_can_zoom_and_turn_frames_and_keeps_its_default_bytes(tmp_path):
    from sensorprint.simulate import make_cameras

    camera = make_cameras(1, 1, seed=3, width=400, height=300)[0]
    kw = dict(seconds=0.4, fps=10, size=(320, 180), motion=False, scene_kind="flat", seed=1, stabilise=True)
    plain = camera.record_video(tmp_path / "plain.mp4", **kw).read_bytes()
    zero = camera.record_video(tmp_path / "zero.mp4", stabilise_zoom=0.0, stabilise_rotation=0.0, **kw).read_bytes()
    assert plain == zero
    warped = camera.record_video(tmp_path / "eis.mp4", stabilise_zoom=0.02, stabilise_rotation=0.5, **kw)
    assert warped.read_bytes() != plain
    with pytest.raises(ValueError):
        camera.record_video(tmp_path / "too_much.mp4", stabilise_zoom=0.5, stabilise_rotation=20.0, **kw)


def test_simulated_hevc_in_mov_and_mp4_reads_as_video(tmp_path):
    from sensorprint.media import probe, read_frames
    from sensorprint.simulate import make_cameras

    camera = make_cameras(1, 1, seed=3, width=400, height=300)[0]
    kw = dict(seconds=0.4, fps=10, size=(320, 180), motion=False, scene_kind="flat", seed=1)
    for container in ("mov", "mp4"):
        path = camera.record_video(tmp_path / f"clip.{container}", codec="hevc", container_format=container, **kw)
        medium = probe(path)
        assert medium.kind == "video" and (medium.width, medium.height) == (320, 180)
        assert medium.metadata.get("codec") == "hevc" and medium.metadata.get("model") == "SimCam-A"
        assert len(list(read_frames(path, strategy="all", n=10))) == 4
    with pytest.raises(ValueError):
        camera.record_video(tmp_path / "clip.avi", codec="vp9", **kw)


# ---------------------------------------------------------------- stabilised reference videos


def test_warp_to_fingerprint_undoes_the_frame_transform():
    from sensorprint.prnu.stabilised import Similarity, warp_to_fingerprint

    k = _pattern(8, (200, 340))
    border, (dy, dx) = 12, (5, -7)
    big = warp_fingerprint(k, SHAPE, SCALE, 0.3, border)
    frame = big[border + dy : border + dy + SHAPE[0], border + dx : border + dx + SHAPE[1]]
    back = warp_to_fingerprint(frame, Similarity(SCALE, 0.3, (float(dy), float(dx))), k.shape)
    covered = back != 0
    assert covered.mean() > 0.7  # the frame shows most of the (zoomed-out) fingerprint
    assert np.corrcoef(back[covered], k[covered])[0, 1] > 0.8
    wrong = warp_to_fingerprint(frame, Similarity(SCALE, 0.3, (0.0, 0.0)), k.shape)
    assert abs(np.corrcoef(wrong[covered], k[covered])[0, 1]) < 0.2


def _reference_frames(tmp_path, **kw):
    from sensorprint.media import read_frames
    from sensorprint.prnu import frame_noise, intensity, to_gray
    from sensorprint.prnu.stabilised import ReferenceFrame
    from sensorprint.simulate import make_cameras

    camera = make_cameras(1, 1, seed=3, width=400, height=300)[0]
    path = camera.record_video(tmp_path / "ref.mp4", seconds=1.2, fps=10, size=(320, 180), seed=1, **kw)
    frames = []
    for frame in read_frames(path, strategy="all"):
        gray = to_gray(frame.pixels)
        inten = intensity(gray)
        residual = frame_noise(gray, method="wavelet", sigma=3.0, levels=4)
        frames.append(ReferenceFrame(residual * inten, inten * inten, frame.index, frame.keyframe, 1.0, gray))
    return frames


def test_a_stabilised_reference_video_is_aligned_and_a_steady_one_summed_as_read(tmp_path):
    from sensorprint.prnu.stabilised import align_reference

    shaken = _reference_frames(tmp_path / "eis", stabilise=True, scene_kind="flat", motion=False)
    found = align_reference(shaken)
    assert found.stabilised is True
    assert len(found.frames) + len(found.left_out) == len(shaken) and len(found.frames) >= len(shaken) // 2
    assert any(max(abs(v) for v in f.transform.shift) > 3 for f in found.fits)
    # a panning camera without stabilisation: the scene moves, the sensor does not; nothing is moved
    steady = _reference_frames(tmp_path / "pan", scene_kind="wall")
    kept = align_reference(steady)
    assert kept.stabilised is not True and kept.left_out == ()
    assert all(a is b for a, b in zip(kept.frames, steady))  # the frames as given, summed as before


def test_enrolling_a_stabilised_reference_video_says_what_was_aligned(tmp_path):
    from sensorprint.cli.text import enroll_lines
    from sensorprint.simulate import make_cameras
    from sensorprint.store import Case
    from sensorprint.workflow import SignalOptions, enroll

    camera = make_cameras(1, 1, seed=3, width=400, height=300)[0]
    kw = dict(seconds=1.2, fps=10, size=(320, 180), seed=1, scene_kind="flat", motion=False)
    camera.record_video(tmp_path / "refs" / "eis.mp4", stabilise=True, **kw)
    case = Case.create(tmp_path / "case")
    options = SignalOptions(frame_strategy="even", n_frames=12)
    summary = enroll(case, "phone", [tmp_path / "refs"], options=options, workers=1)
    ((path, aligned, left_out),) = summary.stabilised
    assert path.endswith("eis.mp4") and aligned >= 6 and aligned + left_out == 12
    assert any("stabilised reference video" in line and "aligned" in line for line in enroll_lines(summary))
    (medium,) = case.list_media(role="reference")
    assert medium.details["alignment"]["stabilisation"] == "stabilised"
    assert len(medium.details["alignment"]["frame_transforms"]) >= aligned - 1
    # the same video enrolled without the alignment: summed as read, nothing said
    plain = enroll(
        case,
        "as_read",
        [tmp_path / "refs"],
        options=SignalOptions(frame_strategy="even", n_frames=12, align_references=False),
        workers=1,
    )
    assert plain.stabilised == [] and plain.fingerprints[0].quality < summary.fingerprints[0].quality
    case.close()


def test_a_steady_reference_video_is_summed_exactly_as_without_the_alignment(tmp_path):
    from sensorprint.simulate import make_cameras
    from sensorprint.store import Case
    from sensorprint.workflow import SignalOptions, enroll

    (camera,) = make_cameras(1, 1, seed=4, width=320, height=180)
    camera.record_video(tmp_path / "refs" / "steady.mp4", seconds=1.2, fps=10, size=(320, 180), seed=2)
    with Case.create(tmp_path / "case") as case:
        for name, align in (("aligned", True), ("as_read", False)):
            options = SignalOptions(frame_strategy="even", n_frames=12, align_references=align)
            enroll(case, name, [tmp_path / "refs"], options=options, workers=1)
        ks = {f.device_name: f.load() for f in case.fingerprints()}
    assert np.array_equal(ks["aligned"], ks["as_read"])


def test_a_per_frame_search_that_finds_nothing_excludes_only_where_a_true_pair_was_predicted_to_show():
    frames = _frames(_pattern(2), n=2)
    plan = SearchPlan(translation_share=0.04)
    unpredicted = compare_stabilised(frames, _pattern(3), target="other", plan=plan)
    assert unpredicted.decision == Decision.INCONCLUSIVE  # no prediction: a weak true pair looks the same
    needed = unpredicted.evidence.threshold_at_search
    weak = compare_stabilised(frames, _pattern(3), plan=plan, expected=0.5 * needed)
    assert weak.decision == Decision.INCONCLUSIVE
    strong = compare_stabilised(frames, _pattern(3), plan=plan, expected=2.0 * needed)
    assert strong.decision == Decision.NO_MATCH and strong.score == unpredicted.score
