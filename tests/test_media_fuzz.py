"""Damaged files of every supported kind: MediaError with one line, never any other exception."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from sensorprint.errors import MediaError
from sensorprint.media import probe, read_frames, read_image
from test_media_raw import write_dng
from test_media_video import write_video


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    import pillow_heif

    pillow_heif.register_heif_opener()
    folder = tmp_path_factory.mktemp("seeds")
    yy, xx = np.mgrid[0:96, 0:128]
    array = np.stack([xx * 2, yy * 2, xx + yy], -1).astype(np.uint8)
    files = {}
    for fmt, suffix in [("JPEG", ".jpg"), ("PNG", ".png"), ("TIFF", ".tif"), ("HEIF", ".heic"), ("WEBP", ".webp")]:
        buffer = io.BytesIO()
        PILImage.fromarray(array).save(buffer, format=fmt)
        files[suffix] = buffer.getvalue()
    files[".mp4"] = write_video(folder / "s.mp4", n=24).read_bytes()
    files[".mkv"] = write_video(folder / "s.mkv", n=24).read_bytes()
    files[".dng"] = write_dng(folder / "s.dng", np.full((96, 128), 1000, np.uint16)).read_bytes()
    return files


def damage(data: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(data)
    how = rng.integers(0, 3)
    if how == 0:  # cut anywhere
        return bytes(data[: rng.integers(1, len(data))])
    if how == 1:  # flip a few bytes
        for _ in range(rng.integers(1, 20)):
            data[rng.integers(0, len(data))] = rng.integers(0, 256)
        return bytes(data)
    start = rng.integers(0, len(data))  # overwrite a run
    run = data[start : start + 200]
    data[start : start + len(run)] = rng.bytes(len(run))
    return bytes(data)


def test_damaged_files_raise_only_media_error(seeds, tmp_path):
    rng = np.random.default_rng(2024)
    outcomes = {"ok": 0, "MediaError": 0}
    for trial in range(120):
        suffix = list(seeds)[trial % len(seeds)]
        path = tmp_path / f"damaged{trial}{suffix}"
        path.write_bytes(damage(seeds[suffix], rng))
        calls = [lambda path=path: probe(path)]
        if suffix in (".mp4", ".mkv"):
            calls.append(lambda path=path: list(read_frames(path, strategy="random", n=3)))
        else:
            calls.append(lambda path=path: read_image(path))
        for call in calls:
            try:
                call()
                outcomes["ok"] += 1
            except MediaError as error:
                assert "\n" not in str(error)
                outcomes["MediaError"] += 1
    assert outcomes["MediaError"] > 60  # most damage is detected (the rest hit pixel data only)
