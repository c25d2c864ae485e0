"""The fingerprint index: the binarised digest shortlists, the full PCE decides, decisions equal the exhaustive ones."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sensorprint.errors import CaseError
from sensorprint.prnu import Query, compare, digest
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.store import index as store_index
from sensorprint.store.records import Precision
from sensorprint.workflow import enroll, scan
from sensorprint.workflow import screen as screen_module

SHAPE = (240, 320)


def _query_of(k: np.ndarray, strength: float, rng) -> np.ndarray:
    return (strength * k + rng.standard_normal(k.shape)).astype(np.float32)


def test_binarised_scores_are_standard_normal_for_wrong_cameras_and_keep_true_ones():
    rng = np.random.default_rng(1)
    ks = rng.standard_normal((60, *SHAPE), dtype=np.float32)
    codes = [digest.fingerprint_code(k) for k in ks]
    bits = np.stack([c[0] for c in codes])
    efficiency = np.array([c[1] for c in codes])
    assert efficiency == pytest.approx(np.sqrt(2 / np.pi), abs=0.01)  # Gaussian K
    light = np.kron(rng.uniform(20, 240, (8, 8)), np.ones((30, 40))).astype(np.float32)  # uneven W·I
    kept = 0
    for j, strength in enumerate(np.linspace(0.028, 0.06, 12)):  # PCE from about 60 to 280
        query = Query(_query_of(ks[j], float(strength), rng) * light, None)
        code = digest.code_prepared_query(query.prepared(), 0, False, SHAPE)
        scores = digest.scores(bits, code)
        cuts = digest.shortlist_cuts(code.efficiency * efficiency)
        pce = compare(query, ks[j], k_is_video=False).score
        wrong = np.delete(scores, j)
        assert abs(wrong.mean()) < 0.5 and 0.6 < wrong.std() < 1.4  # N(0, 1) when not the source
        if pce >= 60:
            kept += 1
            assert j in digest.shortlist(scores - cuts, 0.0, always_kept=0), (pce, scores[j], cuts[j])
    assert kept >= 6


def test_screenable_pairs_are_exactly_the_aligned_comparisons():
    k = np.random.default_rng(2).standard_normal(SHAPE, dtype=np.float32)
    portrait = Query(np.ascontiguousarray(k.T), None)
    found = compare(portrait, k, k_is_video=False)
    assert digest.screenable(portrait.residual.shape, k.shape) and found.evidence.search_stage == "aligned"
    assert digest.aligned_orientations(portrait.residual.shape, k.shape) == [(90, False), (270, False)]
    crop = Query(np.ascontiguousarray(k[:200, :300]), None)
    assert not digest.screenable(crop.residual.shape, k.shape)
    assert not digest.cannot_match(crop.residual.shape, k.shape, k_is_video=False)
    wide = np.random.default_rng(3).standard_normal((200, 400), dtype=np.float32)
    assert digest.cannot_match(wide.shape, k.shape, k_is_video=False)
    assert not digest.cannot_match(wide.shape, k.shape, k_is_video=True)  # roles swapped: searched
    refused = compare(Query(wide, None), k, k_is_video=False)
    # not compared, so not excluded (the fingerprint may be a crop of the sensor): inconclusive, with the reason
    assert refused.decision == "inconclusive" and refused.score == 0 and refused.evidence.reason


@pytest.fixture(scope="module")
def enrolled_case(tmp_path_factory):
    """Three simulated cameras enrolled from images, plus 40 decoy fingerprints of the same size."""
    root = tmp_path_factory.mktemp("index")
    cameras = make_cameras(n_models=1, units_per_model=3, width=SHAPE[1], height=SHAPE[0], seed=11)
    seized = root / "seized"
    for camera in cameras:
        for i in range(6):
            camera.save_jpeg(root / "refs" / camera.name / f"flat{i}.jpg", flat=True, seed=i)
        for i in range(2):
            camera.save_jpeg(seized / f"{camera.name}-{i}.jpg", seed=40 + i)
    make_cameras(n_models=1, units_per_model=1, width=SHAPE[1], height=SHAPE[0], seed=99)[0].save_jpeg(
        seized / "stranger.jpg", seed=3
    )
    rng = np.random.default_rng(5)
    with Case.create(root / "case") as case:
        for camera in cameras:
            enroll(case, camera.name, [root / "refs" / camera.name], workers=1)
        for i in range(40):
            device = case.add_device(f"decoy{i:02d}")
            k = (0.02 * rng.standard_normal(SHAPE)).astype(np.float32)
            case.save_fingerprint(device.id, k, n_media=1, quality=None, media_hashes=[], source="image", parameters={})
    return root, cameras


def _decisions(case: Case) -> dict[str, dict[str, tuple[str, float]]]:
    out = {}
    for medium in case.list_media(role="evidence"):
        rows = case.results(medium.id, method="prnu")
        out[medium.path] = {r.target: (str(r.decision), round(r.score, 6)) for r in rows}
    return out


def test_scan_with_the_index_decides_as_the_exhaustive_scan(enrolled_case, tmp_path):
    root, cameras = enrolled_case
    shutil.copytree(root / "case", tmp_path / "full")
    shutil.copytree(root / "case", tmp_path / "indexed")
    with Case.open(tmp_path / "full") as case:
        exhaustive = scan(case, [root / "seized"], workers=1, exhaustive=True)
        full = _decisions(case)
    with Case.open(tmp_path / "indexed") as case:
        summary = scan(case, [root / "seized"], workers=1, exhaustive=False)
        indexed = _decisions(case)
        screenings = {m.path: m.details["screening"] for m in case.list_media(role="evidence")}
        assert summary.matched == exhaustive.matched >= 2 and summary.scanned == 7
        assert summary.screened == 7 and summary.fingerprints_compared < summary.fingerprints_screened == 7 * 43
        assert exhaustive.screened == 0
        again = scan(case, [root / "seized"], workers=1, exhaustive=False)
        assert again.skipped == 7  # a resumed scan knows the screened devices are done
    for path, rows in full.items():
        matched = {device for device, (decision, _) in rows.items() if decision == "match"}
        assert matched == {device for device, (decision, _) in indexed[path].items() if decision == "match"}
        for device, row in indexed[path].items():
            assert rows[device] == row  # a shortlisted device gets the very same result
        assert screenings[path]["screened"] == 43 and len(indexed[path]) < len(rows)
    assert all(len(rows) == 43 for rows in full.values())


def test_the_index_follows_the_fingerprints_and_keeps_unchanged_rows(enrolled_case, tmp_path):
    root, cameras = enrolled_case
    shutil.copytree(root / "case", tmp_path / "case")
    with Case.open(tmp_path / "case") as case:
        first = screen_module.ensure_index(case)
        manifest = store_index.read_manifest(case.arrays_dir / first.manifest)
        assert len(manifest.entries) == 43
        assert screen_module.ensure_index(case).manifest == first.manifest  # nothing changed: nothing written
        old_bits = np.array(store_index.load_bits(case.arrays_dir, manifest.groups[0]))
        enroll(case, "late", [root / "refs" / cameras[0].name], workers=1)
        second = screen_module.ensure_index(case)
        assert second.manifest != first.manifest
        updated = store_index.read_manifest(case.arrays_dir / second.manifest)
        assert {e.device for e in updated.entries} == {e.device for e in manifest.entries} | {"late"}
        new_bits = store_index.load_bits(case.arrays_dir, updated.groups[0])
        assert np.array_equal(old_bits, new_bits[: old_bits.shape[0]])
        names = {p.name for p in case.arrays_dir.iterdir() if p.name.startswith("index-")}
        assert names == store_index.index_files(updated) | {store_index.POINTER}
        pointer = json.loads((case.arrays_dir / store_index.POINTER).read_text())
        assert pointer == {"manifest": second.manifest}
        assert any(e.action == "fingerprint index updated" for e in case.audit_log())
        summary = scan(case, [root / "seized"], workers=1, exhaustive=False)  # every file screened again
        assert summary.scanned == 7 and summary.fingerprints_screened == 7 * 44
        assert {m.details["screening"]["index"] for m in case.list_media(role="evidence")} == {second.manifest}
        late = case.find_medium("evidence", str(root / "seized" / f"{cameras[0].name}-1.jpg"))
        assert "late" in case.done_targets(late.id, "prnu")  # the same camera as "late": shortlisted


def test_import_pools_devices_with_their_provenance_and_decides_as_the_source(enrolled_case, tmp_path):
    from sensorprint.workflow.library import import_cases

    root, cameras = enrolled_case
    shutil.copytree(root / "case", tmp_path / "source")
    with Case.open(tmp_path / "source") as source:
        sources = {f.device_name: f for f in source.fingerprints()}
        sums = source.load_sums(source.get_device(cameras[0].name).id, SHAPE)
    with Case.create(tmp_path / "library") as library:
        library.add_device(cameras[1].name)  # a name already taken here: the import renames
        summary = import_cases(library, [tmp_path / "source"])
        assert summary.fingerprints == 43 and len(summary.imported) == 43
        assert summary.renamed == {f"source: {cameras[1].name}": f"{cameras[1].name} [source]"}
        copied = {f.device_name: f for f in library.fingerprints()}
        first, original = copied[cameras[0].name], sources[cameras[0].name]
        assert first.precision == Precision.FLOAT16 and original.precision == Precision.FLOAT32  # the default
        assert np.array_equal(first.load(), original.load().astype(np.float16).astype(np.float32))
        assert first.load().dtype == np.float32 and not first.load().flags.writeable
        assert first.media_hashes == original.media_hashes and first.n_media == 6
        origin = first.parameters["imported"][f"{SHAPE[1]}x{SHAPE[0]}"]
        assert origin["case"] == str(tmp_path / "source") and origin["run"]["command"] == "enroll"
        assert origin["array_sha256"] == original.array_sha256 and origin["stored_as"] == "float16"
        assert summary.stored_bytes < 0.51 * summary.source_bytes
        copied_sums = library.load_sums(library.get_device(cameras[0].name).id, SHAPE)
        assert all(np.array_equal(copied_sums[key], sums[key]) for key in sums)
        assert not library.verify_arrays()
        again = import_cases(library, [tmp_path / "source"])
        assert not again.imported and len(again.already) == 43  # an import can be repeated
        scanned = scan(library, [root / "seized"], workers=1, exhaustive=False)
        assert scanned.matched >= 2
        assert any(e.action == "device imported" for e in library.audit_log())


def test_the_import_and_exhaustive_commands(enrolled_case, tmp_path):
    from typer.testing import CliRunner

    from sensorprint.cli import app

    root, cameras = enrolled_case
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(tmp_path / "library")]).exit_code == 0
    result = runner.invoke(app, ["import", str(tmp_path / "library"), str(root / "case")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "43 devices imported (43 fingerprints) from 1 cases, 0 already here" in result.output
    result = runner.invoke(app, ["import", str(tmp_path / "library"), str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = runner.invoke(app, ["scan", str(tmp_path / "library"), str(root / "seized"), "-w", "1", "--exhaustive"])
    assert result.exit_code == 0, result.output
    assert "index:" not in result.output  # compared with every fingerprint
    with Case.open(tmp_path / "library") as case:
        assert all(len(case.results(m.id, method="prnu")) == 43 for m in case.list_media(role="evidence"))


def test_float16_fingerprints_decide_as_float32_and_a_full_copy_keeps_the_bytes(enrolled_case, tmp_path):
    from sensorprint.workflow.library import import_cases

    root, cameras = enrolled_case
    with Case.create(tmp_path / "full") as library:  # float32 asked for: the very bytes of the source
        import_cases(library, [root / "case"], precision=Precision.FLOAT32)
        with Case.open(root / "case", read_only=True) as source:
            assert {f.array_sha256 for f in library.fingerprints()} == {f.array_sha256 for f in source.fingerprints()}
    shutil.copytree(tmp_path / "full", tmp_path / "half")
    with Case.open(tmp_path / "half") as half:  # the same fingerprints rewritten at float16
        for record in half.fingerprints():
            params = dict(n_media=record.n_media, quality=record.quality, media_hashes=record.media_hashes)
            half.save_fingerprint(
                record.device_id, record.load(), **params, source=record.source, parameters=record.parameters,
                precision=Precision.FLOAT16,
            )  # fmt: skip
        assert {f.precision for f in half.fingerprints()} == {Precision.FLOAT16}
    results = {}
    for name in ("full", "half"):
        with Case.open(tmp_path / name) as case:
            scan(case, [root / "seized"], workers=1, exhaustive=True)
            results[name] = _decisions(case)
    for path, rows in results["full"].items():
        assert {d: r[0] for d, r in rows.items()} == {d: r[0] for d, r in results["half"][path].items()}
        for device, (_, pce) in rows.items():
            assert results["half"][path][device][1] == pytest.approx(pce, rel=1e-3, abs=0.05)


def test_float16_storage_halves_the_bytes_and_loads_as_float32(tmp_path):
    rng = np.random.default_rng(4)
    k = (0.01 * rng.standard_normal(SHAPE)).astype(np.float32)
    with Case.create(tmp_path / "case") as case:
        fields = dict(n_media=1, quality=None, media_hashes=[], source="image", parameters={})
        full = case.save_fingerprint(case.add_device("full").id, k, **fields)
        half = case.save_fingerprint(case.add_device("half").id, k, **fields, precision=Precision.FLOAT16)
        huge = case.save_fingerprint(case.add_device("huge").id, k * 1e7, **fields, precision=Precision.FLOAT16)
        assert (full.precision, half.precision, huge.precision) == ("float32", "float16", "float32")
        assert half.path.stat().st_size < 0.51 * full.path.stat().st_size
        assert isinstance(full.load(), np.memmap)  # float32 files (older cases too) load as before
        loaded = half.load()
        assert loaded.dtype == np.float32 and not loaded.flags.writeable
        assert np.array_equal(loaded, k.astype(np.float16).astype(np.float32))
        assert np.abs(loaded - k).max() <= 2.0**-11 * np.abs(k).max()
        assert not case.verify_arrays()
        np.save(half.path, k.astype(np.float64))  # neither float32 nor float16: refused in one line
        with pytest.raises(CaseError, match="does not match the case record"):
            case.fingerprints(half.device_id)[0].load()


def test_scan_screens_by_itself_above_the_documented_size(enrolled_case, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sensorprint.cli import app

    root, _ = enrolled_case
    shutil.copytree(root / "case", tmp_path / "case")
    with Case.open(tmp_path / "case") as case:
        assert case.counts()["fingerprints"] == 43
        assert not screen_module.use_index(case, None)  # 43 <= MIN_FINGERPRINTS (200): every fingerprint
        assert screen_module.use_index(case, False) and not screen_module.use_index(case, True)
    monkeypatch.setattr(screen_module, "MIN_FINGERPRINTS", 42)  # as if the case were large
    result = CliRunner().invoke(app, ["scan", str(tmp_path / "case"), str(root / "seized"), "-w", "1"])
    assert result.exit_code == 0, result.output
    assert "index: 7 files screened against 301 fingerprints" in result.output


def test_import_refuses_a_source_fingerprint_changed_since_it_was_saved(enrolled_case, tmp_path):
    from sensorprint.workflow.library import import_cases

    root, cameras = enrolled_case
    shutil.copytree(root / "case", tmp_path / "source")
    with Case.open(tmp_path / "source") as source:
        tampered = next(f for f in source.fingerprints() if f.device_name == cameras[0].name)
    k = np.load(tampered.path)
    k[0, 0] += 1.0
    np.save(tampered.path, k)
    with Case.create(tmp_path / "library") as library:
        with pytest.raises(CaseError, match="SHA-256"):
            import_cases(library, [tmp_path / "source"])
        assert library.get_device(cameras[0].name) is None  # refused before anything of it was copied


def test_a_worker_keeps_a_bounded_number_of_prepared_fingerprints(tmp_path, monkeypatch):
    from sensorprint.workflow import signals

    monkeypatch.setattr(signals, "MAX_PREPARED", 2)
    monkeypatch.setattr(signals, "_prepared", signals.OrderedDict())
    refs = []
    for i in range(3):
        np.save(tmp_path / f"k{i}.npy", np.random.default_rng(i).normal(size=(32, 32)).astype(np.float32))
        refs.append(signals.FingerprintRef(f"D{i}", i, str(tmp_path / f"k{i}.npy"), (32, 32), "image"))
    first = signals.prepared_fingerprint(refs[0])
    signals.prepared_fingerprint(refs[1])
    assert signals.prepared_fingerprint(refs[0]) is first  # used again: kept, and now the most recent
    signals.prepared_fingerprint(refs[2])  # one too many: the least recently used (D1) goes
    assert list(signals._prepared) == [refs[0].path, refs[2].path]
