"""Camera RAW through rawpy: a synthetic DNG written here (no real camera RAW file is available)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from sensorprint.errors import MediaError
from sensorprint.media import probe, read_image

BLACK, WHITE = 64, 4095


def write_dng(
    path: Path,
    mosaic: np.ndarray,
    *,
    orientation: int = 1,
    make: str = "TestMake",
    model: str = "TestCam DNG",
    neutral: tuple[int, int, int] = (1, 1, 1),
) -> Path:
    """A minimal uncompressed little-endian Bayer (RGGB) DNG."""
    height, width = mosaic.shape
    data = mosaic.astype("<u2").tobytes()

    def text(value: str) -> bytes:
        return value.encode() + b"\x00"

    identity = [1, 0, 0, 0, 1, 0, 0, 0, 1]
    tags = sorted(
        [
            (254, 4, [0]),
            (256, 4, [width]),
            (257, 4, [height]),
            (258, 3, [16]),
            (259, 3, [1]),
            (262, 3, [32803]),
            (271, 2, text(make)),
            (272, 2, text(model)),
            (273, 4, [0]),
            (274, 3, [orientation]),
            (277, 3, [1]),
            (278, 4, [height]),
            (279, 4, [len(data)]),
            (284, 3, [1]),
            (33421, 3, [2, 2]),
            (33422, 1, [0, 1, 1, 2]),
            (50706, 1, [1, 4, 0, 0]),
            (50708, 2, text(model)),
            (50714, 4, [BLACK]),
            (50717, 4, [WHITE]),
            (50721, 10, [v for c in identity for v in (c * 10000, 10000)]),
            (50728, 5, [v for n in neutral for v in (n, 1)]),
            (50778, 3, [21]),
        ],
        key=lambda tag: tag[0],
    )
    pack = {1: "B", 3: "H", 4: "I", 5: "I", 10: "i"}
    entries = []
    for tag, kind, values in tags:
        raw = values if kind == 2 else struct.pack("<" + pack[kind] * len(values), *values)
        count = len(values) // (2 if kind in (5, 10) else 1)
        entries.append((tag, kind, count, raw))
    extra_at = 8 + 2 + 12 * len(entries) + 4
    extra, where = bytearray(), {}
    for tag, _, _, raw in entries:
        if len(raw) > 4:
            where[tag] = extra_at + len(extra)
            extra += raw + (b"\x00" if len(raw) % 2 else b"")
    data_at = extra_at + len(extra)
    out = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(entries)))
    for tag, kind, count, raw in entries:
        raw = struct.pack("<I", data_at) if tag == 273 else raw
        out += struct.pack("<HHI", tag, kind, count) + (
            struct.pack("<I", where[tag]) if len(raw) > 4 else raw.ljust(4, b"\x00")
        )
    path.write_bytes(bytes(out) + struct.pack("<I", 0) + bytes(extra) + data)
    return path


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_dng_read_in_sensor_orientation(tmp_path, orientation):
    mosaic = np.full((96, 160), BLACK + 1000, dtype=np.uint16)
    path = write_dng(tmp_path / "IMG_0001.DNG", mosaic, orientation=orientation)
    image = read_image(path)
    assert image.pixels.shape == (96, 160, 3) and image.pixels.dtype == np.float32  # never turned
    medium = image.medium
    assert medium.orientation == orientation and (medium.width, medium.height) == (160, 96)
    assert medium.metadata["make"] == "TestMake" and medium.metadata["model"] == "TestCam DNG"
    assert medium.metadata["format"] == "RAW" and medium.metadata["raw_processing"]["gamma"] == [1, 1]
    assert probe(path) == medium


def test_dng_is_linear_and_clips_to_saturation(tmp_path):
    mosaic = np.full((96, 160), BLACK + 1000, dtype=np.uint16)
    mosaic[:, 120:] = WHITE  # a saturated band
    image = read_image(write_dng(tmp_path / "flat.dng", mosaic))
    inner = image.pixels[8:-8, 8:100]
    expected = 1000 * 255.0 / (WHITE - BLACK)  # linear: no gamma, no auto-brightening
    assert np.abs(inner - expected).max() < 0.5
    assert np.abs(image.pixels[8:-8, 128:-8] - image.saturation).max() < 0.01


def test_dng_keeps_a_planted_sensor_pattern(tmp_path):
    rng = np.random.default_rng(5)
    prnu = rng.normal(0.0, 0.03, size=(128, 128))
    mosaic = np.round(BLACK + 2000 * (1 + prnu)).astype(np.uint16)
    image = read_image(write_dng(tmp_path / "prnu.dng", mosaic))
    green = image.pixels[:, :, 1][4:-4, 4:-4]
    pattern = prnu[4:-4, 4:-4]
    correlation = np.corrcoef(green.ravel(), pattern.ravel())[0, 1]
    assert correlation > 0.5, correlation  # demosaicing spreads the pattern but keeps it


def test_truncated_dng_refused(tmp_path):
    path = write_dng(tmp_path / "cut.dng", np.full((96, 160), 1000, dtype=np.uint16))
    path.write_bytes(path.read_bytes()[:-1])  # LibRaw alone would pad the missing byte with zeros
    with pytest.raises(MediaError) as caught:
        read_image(path)
    assert "truncated" in str(caught.value).lower() and "\n" not in str(caught.value)
