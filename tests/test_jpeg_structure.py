"""JPEG structure against a device's references: corroboration beside PRNU, never a decision."""

from __future__ import annotations

import pytest
from PIL import Image

from sensorprint.media.image import read_image
from sensorprint.media.structure import Consistency, compare_structure, ijg_quality
from sensorprint.simulate import make_cameras


def _meta(path):
    return read_image(path).medium.metadata


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("structure")
    a, b = make_cameras(n_models=2, units_per_model=1, seed=3, width=320, height=240)
    refs = [_meta(a.save_jpeg(root / f"a{i}.jpg", flat=True, seed=i)) for i in range(3)]
    query = a.save_jpeg(root / "a_scene.jpg", seed=9)
    other = b.save_jpeg(root / "b_scene.jpg", seed=9)
    with Image.open(query) as image:
        edited_exif = image.getexif()
        edited_exif[0x0131] = "Adobe Photoshop 25.0 (Windows)"
        image.save(root / "edited.jpg", exif=edited_exif, quality=85)
        image.save(root / "shared.jpg", quality=70)  # re-saved without EXIF, as social networks do
        image.save(root / "lossless.png")
    return root, refs, query, other


def test_a_file_of_the_camera_is_consistent_with_its_references(files):
    root, refs, query, _ = files
    check = compare_structure(_meta(query), refs)
    assert check.state == Consistency.CONSISTENT, check


def test_another_model_edited_stripped_and_non_jpeg_files_are_told_apart(files):
    root, refs, _, other = files
    inconsistent = compare_structure(_meta(other), refs)
    assert inconsistent.state == Consistency.INCONSISTENT and "model" in inconsistent.reasons[0]
    edited = compare_structure(_meta(root / "edited.jpg"), refs)
    assert edited.state == Consistency.EDITED and "Photoshop" in edited.reasons[0]
    assert compare_structure(_meta(root / "shared.jpg"), refs).state == Consistency.EDITED
    assert compare_structure(_meta(root / "lossless.png"), refs).state == Consistency.UNKNOWN
    assert compare_structure(_meta(other), []).state == Consistency.UNKNOWN


def test_the_ijg_quality_of_standard_tables(tmp_path):
    for quality in (50, 75, 95):
        Image.new("RGB", (64, 64)).save(tmp_path / f"q{quality}.jpg", quality=quality)
        assert _meta(tmp_path / f"q{quality}.jpg")["jpeg"]["quality"] == quality
    assert ijg_quality([1] * 3) is None
