"""sensorprint.media on still images: formats, metadata, and every kind of bad input."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image as PILImage

from conftest import assert_one_line_media_error
from sensorprint.media import Medium, probe, read_image, sha256_file

RNG = np.random.default_rng(7)


def smooth_rgb(height: int = 96, width: int = 128) -> np.ndarray:
    """An asymmetric, smooth 8-bit RGB image (survives lossy codecs; shows any rotation)."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 255 // width, yy * 255 // height, (xx + 2 * yy) % 256], axis=-1).astype(np.uint8)


def noisy_rgb(height: int = 80, width: int = 100) -> np.ndarray:
    return RNG.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def exif_bytes(orientation: int = 6) -> bytes:
    exif = PILImage.Exif()
    exif[0x010F] = "TestMake"
    exif[0x0110] = "TestModel X1"
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    exif.get_ifd(0x8769)[0xA431] = "SN-12345"
    return exif.tobytes()


def write_tiff_rgb16(path: Path, array: np.ndarray) -> None:
    """A minimal uncompressed 16-bit RGB TIFF (Pillow cannot write one)."""
    height, width, _ = array.shape
    data = array.astype("<u2").tobytes()
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, None),
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (273, 4, 1, None),
        (277, 3, 1, 3),
        (278, 4, 1, height),
        (279, 4, 1, len(data)),
        (284, 3, 1, 1),
    ]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    bits_offset = ifd_offset + ifd_size
    data_offset = bits_offset + 6
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if tag == 258:
            value = bits_offset
        if tag == 273:
            value = data_offset
        if kind == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16) + data
    path.write_bytes(bytes(out))


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims a huge size, with almost no data (a decompression-bomb stand-in)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def file_state(path: Path) -> tuple:
    info = os.stat(path)
    return info.st_mtime_ns, info.st_size, hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- formats that must work


def test_jpeg_pixels_as_stored_with_exif_recorded_not_applied(tmp_path):
    array = smooth_rgb()
    path = tmp_path / "photo.jpg"
    PILImage.fromarray(array).save(path, quality=95, exif=exif_bytes(orientation=6))
    before = file_state(path)
    image = read_image(path)
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (96, 128, 3)  # not turned to 128x96
    assert np.abs(image.pixels - array).mean() < 2.0
    assert image.saturation == 255.0
    medium = image.medium
    assert (medium.kind, medium.width, medium.height, medium.orientation) == ("image", 128, 96, 6)
    assert medium.metadata["make"] == "TestMake" and medium.metadata["model"] == "TestModel X1"
    assert medium.metadata["datetime"] == "2024:05:06 07:08:09"
    assert medium.metadata["body_serial_number"] == "SN-12345"
    assert medium.metadata["format"] == "JPEG" and medium.metadata["bit_depth"] == 8
    assert medium.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    assert medium.size_bytes == path.stat().st_size
    assert file_state(path) == before  # evidence untouched


def test_probe_matches_read_and_to_dict_is_json(tmp_path):
    import json

    path = tmp_path / "photo.jpg"
    PILImage.fromarray(smooth_rgb()).save(path, exif=exif_bytes(orientation=3))
    medium = probe(path)
    assert isinstance(medium, Medium)
    assert medium == read_image(path).medium
    record = json.loads(json.dumps(medium.to_dict()))
    assert record["orientation"] == 3 and record["sha256"] == medium.sha256 and record["path"] == str(path)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_lossless_8bit_is_exact(tmp_path, suffix):
    array = noisy_rgb()
    path = tmp_path / f"image{suffix}"
    PILImage.fromarray(array).save(path)
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, array.astype(np.float32))
    assert image.medium.metadata["format"] == {".png": "PNG", ".tif": "TIFF"}[suffix]


def test_tiff_16bit_rgb_keeps_all_bits(tmp_path):
    array = RNG.integers(0, 65536, size=(70, 90, 3), dtype=np.uint16)
    path = tmp_path / "scan16.tif"
    write_tiff_rgb16(path, array)
    image = read_image(path)
    assert image.medium.metadata["bit_depth"] == 16 and "bit_depth_read" not in image.medium.metadata
    np.testing.assert_allclose(image.pixels, array.astype(np.float64) * 255.0 / 65535.0, atol=1e-3)
    # the low byte matters: an 8-bit read would be off by up to 1 grey level
    assert np.abs(image.pixels - (array >> 8).astype(np.float32) * 255.0 / 255.0).max() > 0.5


def test_png_16bit_grayscale_replicated_and_scaled(tmp_path):
    gray = RNG.integers(0, 65536, size=(70, 80), dtype=np.uint16)
    path = tmp_path / "gray16.png"
    PILImage.fromarray(gray).save(path)
    image = read_image(path)
    expected = gray.astype(np.float64) * 255.0 / 65535.0
    for channel in range(3):
        np.testing.assert_allclose(image.pixels[:, :, channel], expected, atol=1e-3)
    assert image.medium.metadata["grayscale"] is True and image.medium.metadata["bit_depth"] == 16


@pytest.mark.parametrize("orientation", range(1, 9))
def test_heic_read_in_coded_orientation_with_orientation_recorded(tmp_path, orientation):
    pillow_heif.register_heif_opener()
    array = smooth_rgb()
    path = tmp_path / "phone.heic"
    PILImage.fromarray(array).save(path, quality=95, exif=exif_bytes(orientation=orientation))
    image = read_image(path)
    assert image.medium.metadata["format"] == "HEIF"
    assert image.medium.orientation == orientation
    assert image.pixels.shape == (96, 128, 3)  # libheif's rotation undone: the stored orientation
    assert np.abs(image.pixels - array).mean() < 3.0
    assert image.medium.metadata["make"] == "TestMake"
    assert probe(path) == image.medium  # the header-only probe gives the same stored size


def test_cmyk_jpeg_converted_and_noted(tmp_path):
    path = tmp_path / "print.jpg"
    PILImage.fromarray(noisy_rgb()).convert("CMYK").save(path, quality=95)
    image = read_image(path)
    assert image.pixels.shape == (80, 100, 3)
    assert image.medium.metadata["converted_from"] == "CMYK"


def test_grayscale_jpeg_replicated_to_three_channels(tmp_path):
    path = tmp_path / "gray.jpg"
    PILImage.fromarray(noisy_rgb()[:, :, 0]).save(path)
    image = read_image(path)
    assert image.pixels.shape == (80, 100, 3)
    np.testing.assert_array_equal(image.pixels[:, :, 0], image.pixels[:, :, 2])
    assert image.medium.metadata["grayscale"] is True


def test_wrong_extension_reads_by_content(tmp_path):
    path = tmp_path / "really_a_jpeg.png"
    PILImage.fromarray(smooth_rgb()).save(path, format="JPEG")
    image = read_image(path)
    assert image.medium.metadata["format"] == "JPEG"
    assert ".png" in image.medium.metadata["extension_mismatch"]


# ---------------------------------------------------------------- bad input


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert_one_line_media_error(lambda: read_image(path), "empty")
    assert_one_line_media_error(lambda: probe(path), "empty")


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("TIFF", ".tif")])
@pytest.mark.parametrize("keep", [0.6, "all but 2 bytes"])
def test_truncated_file(tmp_path, fmt, suffix, keep):
    whole = io.BytesIO()
    PILImage.fromarray(noisy_rgb(200, 200)).save(whole, format=fmt)
    data = whole.getvalue()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: int(len(data) * keep)] if isinstance(keep, float) else data[:-2])
    assert_one_line_media_error(lambda: read_image(path), "truncated")


def test_non_image_content(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is a text file, not a photograph\n" * 20)
    assert_one_line_media_error(lambda: read_image(text), "not an image or a video")
    assert_one_line_media_error(lambda: probe(text), "not an image or a video")
    noise = tmp_path / "blob.bin"
    noise.write_bytes(RNG.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert_one_line_media_error(lambda: probe(noise), "not an image or a video")


def test_decompression_bomb_named_with_its_pixel_count(tmp_path):
    path = tmp_path / "bomb.png"
    png_header_only(path, 30000, 30000)
    assert_one_line_media_error(lambda: read_image(path), "900,000,000", "decompression bomb")
    assert_one_line_media_error(lambda: probe(path), "900,000,000")


def test_max_pixels_is_honoured_both_ways(tmp_path):
    # 195 Mpx: refused by Pillow's own default limit (2 x 89.5 Mpx) but within max_pixels=200 Mpx
    path = tmp_path / "big.png"
    png_header_only(path, 15000, 13000)
    saved_limit = PILImage.MAX_IMAGE_PIXELS
    medium = probe(path)
    assert (medium.width, medium.height) == (15000, 13000)
    assert PILImage.MAX_IMAGE_PIXELS == saved_limit  # Pillow's global restored
    assert_one_line_media_error(lambda: probe(path, max_pixels=100_000_000), "195,000,000")
    small = tmp_path / "small.png"
    PILImage.fromarray(noisy_rgb()).save(small)
    assert_one_line_media_error(lambda: read_image(small, max_pixels=5000), "8,000")


def test_palette_image_refused(tmp_path):
    path = tmp_path / "palette.png"
    PILImage.fromarray(smooth_rgb()).convert("P").save(path)
    assert_one_line_media_error(lambda: read_image(path), "palette")
    gif = tmp_path / "anim.gif"
    PILImage.fromarray(smooth_rgb()).save(gif)
    assert_one_line_media_error(lambda: read_image(gif), "palette")


def test_tiny_image_refused(tmp_path):
    path = tmp_path / "icon.png"
    PILImage.fromarray(noisy_rgb(63, 200)).save(path)
    assert_one_line_media_error(lambda: read_image(path), "too small", "64")
    ok = tmp_path / "ok.png"
    PILImage.fromarray(noisy_rgb(64, 64)).save(ok)
    assert read_image(ok).pixels.shape == (64, 64, 3)


def test_bogus_raw_files_refused(tmp_path):
    # TIFF magic with garbage behind it, named like a Nikon RAW: goes to LibRaw, which refuses it
    nef = tmp_path / "DSC_0001.NEF"
    nef.write_bytes(b"II*\x00\x08\x00\x00\x00" + RNG.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    assert_one_line_media_error(lambda: read_image(nef), "raw")
    assert_one_line_media_error(lambda: probe(nef), "raw")
    cr2 = tmp_path / "IMG_0001.CR2"
    cr2.write_bytes(b"II*\x00\x10\x00\x00\x00CR\x02\x00" + b"\x00" * 3000)
    assert_one_line_media_error(lambda: read_image(cr2), "raw")


def test_missing_file_and_folder(tmp_path):
    assert_one_line_media_error(lambda: read_image(tmp_path / "nope.jpg"), "not found")
    assert_one_line_media_error(lambda: read_image(tmp_path), "folder")


def test_video_given_to_read_image(tmp_path):
    path = tmp_path / "clip.jpg"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 100)
    assert_one_line_media_error(lambda: read_image(path), "video")


# ---------------------------------------------------------------- real camera data


@pytest.mark.shared_data
def test_real_nikon_jpeg(shared_data):
    path = shared_data / "dresden-nikon" / "flat" / "Nikon_D200_1_18178.JPG"
    image = read_image(path)
    medium = image.medium
    assert medium.metadata["make"] == "NIKON CORPORATION" and medium.metadata["model"] == "NIKON D200"
    assert (medium.width, medium.height) == (3872, 2592)
    assert medium.orientation == 6  # recorded portrait...
    assert image.pixels.shape == (2592, 3872, 3)  # ...but pixels as the sensor stored them
    assert medium.metadata["datetime"] == "2009:01:12 20:48:01"
    assert medium.sha256 == sha256_file(path)
    assert 0.0 <= float(image.pixels.min()) and float(image.pixels.max()) <= 255.0
