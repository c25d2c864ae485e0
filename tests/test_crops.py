"""References that are crops of the sensor's frame: registered into the device's fingerprint, or refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sensorprint.errors import MatchError
from sensorprint.prnu import FingerprintAccumulator, extract_residual
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow import enroll
from sensorprint.workflow.correct import remove_reference
from sensorprint.workflow.validate import SAME, validate


def test_a_placed_crop_adds_exactly_its_part_of_the_sensor():
    rng = np.random.default_rng(3)
    image = rng.uniform(40, 200, (64, 96)).astype(np.float32)
    residual = extract_residual(image)
    whole = FingerprintAccumulator((64, 96))
    whole.add(image, residual=residual)
    crop = image[10:40, 20:70]
    placed = FingerprintAccumulator((64, 96))
    placed.add_placed(np.rot90(crop, -1), residual=np.rot90(residual[10:40, 20:70], -1), rotation=90, offset=(10, 20))
    num, den = placed.state()["num"][0], placed.state()["den"][0]
    np.testing.assert_allclose(num[10:40, 20:70], whole.state()["num"][0][10:40, 20:70], rtol=1e-5)
    assert not num[:10].any() and not den[:, :20].any() and placed.n_media == 1  # nothing outside the crop
    with pytest.raises(MatchError, match="does not lie inside"):
        placed.add_placed(crop, residual=residual[10:40, 20:70], offset=(50, 0))


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    root = tmp_path_factory.mktemp("crops")
    a, b = make_cameras(n_models=1, units_per_model=2, seed=21, width=640, height=480)
    refs = root / "refs"
    for i in range(5):
        a.save_jpeg(refs / f"a_flat{i}.jpg", flat=True, seed=100 + i)
    crop = a.save_jpeg(
        refs / "a_crop.jpg", flat=True, seed=7, crop=(100, 60, 400, 300)
    )  # an edited copy: a part of the frame
    stray = b.save_jpeg(refs / "b_crop.jpg", seed=8, crop=(100, 60, 400, 300))  # the other unit's, same size
    resized = a.save_jpeg(refs / "a_resized.jpg", seed=9, scale=0.7)  # no crop: scaled
    edited = refs / "a_edited.jpg"  # the sensor's size, turned upside down by an editor
    with Image.open(a.save_jpeg(root / "a_flat5.jpg", flat=True, seed=105)) as image:
        exif = Image.Exif()
        exif[0x0131] = "Adobe Photoshop 25.0"
        image.rotate(180).save(edited, quality=95, exif=exif)
    return {
        "refs": refs,
        "a": a.name,
        "crop": str(crop),
        "stray": str(stray),
        "resized": str(resized),
        "edited": str(edited),
    }


def test_a_crop_is_registered_at_its_offset_and_the_others_refused(shots, tmp_path):
    with Case.create(tmp_path / "case") as case:
        summary = enroll(case, shots["a"], [shots["refs"]], workers=1)
        assert sorted(summary.refused) == sorted([shots["stray"], shots["resized"]])
        registered = sorted(line for line in summary.outcomes if line.startswith("registered"))
        assert len(registered) == 2 and "a_crop.jpg at offset (x=100, y=60) of the 640x480" in registered[0]
        assert "a_edited.jpg at offset (x=0, y=0), rotated 180°" in registered[1]
        refused = [line for line in summary.outcomes if line.startswith("refused")]
        assert len(refused) == 2 and all(
            "not found as a crop of the sensor at native scale" in line for line in refused
        )
        (fingerprint,) = case.fingerprints()  # no fingerprint of the crop's own size
        assert (fingerprint.width, fingerprint.height, fingerprint.n_media) == (640, 480, 7)
        medium = case.find_medium("reference", shots["crop"], case.get_device(shots["a"]).id)
        assert medium.details["registration"]["transform"]["offset"] == [60, 100]
        assert int(case.load_sums(medium.device_id, (480, 640))["n_media"]) == 7
        # removing another reference re-estimates from the kept files, the crop placed again where it was found
        remove_reference(case, shots["a"], str(shots["refs"] / "a_flat0.jpg"), reason="test")
        (fingerprint,) = case.fingerprints()
        assert fingerprint.n_media == 6
        sums = case.load_sums(medium.device_id, (480, 640))
        den = sums["den"].sum(axis=0)
        assert int(sums["n_media"]) == 6 and den[60:360, 100:500].mean() > 1.1 * den[:50].mean()


def test_force_keeps_an_unplaced_crop_flagged(shots, tmp_path):
    with Case.create(tmp_path / "case") as case:
        summary = enroll(case, shots["a"], [shots["refs"]], workers=1, force=True)
        assert summary.refused == [] and sum(line.startswith("KEPT (--force)") for line in summary.outcomes) == 2
        flagged = {m.path for m in case.list_media(role="reference") if m.details.get("reference_flag")}
        assert flagged == {shots["stray"], shots["resized"]}


def test_validate_holds_a_registered_crop_out_at_its_offset(shots, tmp_path):
    with Case.create(tmp_path / "case") as case:
        enroll(case, shots["a"], [shots["refs"]], workers=1)
        found = validate(case, [], workers=1)
    held_out = {s.file: s for s in found.scores if s.origin == SAME}
    assert {shots["crop"], shots["edited"]} <= set(held_out)  # the registered ones are scored too
    crop = held_out[shots["crop"]]
    assert crop.n_positions == 1 and crop.decision == "match"  # at the place it was registered, not searched
    assert crop.pce > 60
