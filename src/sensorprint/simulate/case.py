"""The demo case: reference photos of seized cameras, an evidence folder, and the ground truth.

Used by ``sensorprint demo``, the tests and the benchmarks. The evidence mixes what an
examiner meets: natural photos of the enrolled cameras (some stored as portraits, some
cropped, one downscaled), photos of cameras that were not seized — one of them a twin of
an enrolled camera (same model) — and files that cannot be read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .camera import Camera, make_cameras
from .scenes import scene as make_scene

_MIN_MEAN_RADIANCE = 0.15


@dataclass(frozen=True)
class _Shot:
    camera: Camera
    relpath: str
    flat: bool = False
    orientation: int = 0
    rotate_pixels: bool = True
    crop: tuple[int, int, int, int] | None = None
    scale: float | None = None
    scene_kind: str | None = None


def demo_cameras(seed: int = 0, *, width: int = 1024, height: int = 768) -> tuple[list[Camera], list[Camera]]:
    """(enrolled, unenrolled) cameras of the demo case.

    Enrolled: SimCam-A units 0 and 1 (twins of one model), SimCam-B unit 0, SimCam-C unit 0.
    Unenrolled: SimCam-A unit 2 (a third unit of the twins' model) and SimCam-D unit 0.
    """
    cams = {c.name: c for c in make_cameras(4, 3, width=width, height=height, seed=seed)}
    enrolled = [cams["SimCam-A_unit0"], cams["SimCam-A_unit1"], cams["SimCam-B_unit0"], cams["SimCam-C_unit0"]]
    unenrolled = [cams["SimCam-A_unit2"], cams["SimCam-D_unit0"]]
    return enrolled, unenrolled


def _plan(enrolled: list[Camera], unenrolled: list[Camera], n_flat: int, n_natural: int) -> list[_Shot]:
    shots: list[_Shot] = []
    for cam in enrolled:
        for i in range(n_flat):
            shots.append(_Shot(cam, f"reference/{cam.name}/flat_{i:02d}.jpg", flat=True))
        for i in range(n_natural):
            shots.append(_Shot(cam, f"reference/{cam.name}/natural_{i:02d}.jpg"))
    a0, a1, b0, c0 = enrolled
    w, h = a0.width, a0.height
    folders = {
        a0: "evidence/phone_dump/DCIM/100SIMCA",
        a1: "evidence/laptop/Pictures/holiday",
        b0: "evidence/phone_dump/DCIM/Camera",
        c0: "evidence/usb_stick/photos/2024",
    }
    kinds = ("photo", "texture", "photo", "sky", "wall", "photo")
    for c, (cam, folder) in enumerate(folders.items()):
        prefix = "IMG" if "phone" in folder else "DSC"
        for i in range(3):
            shots.append(_Shot(cam, f"{folder}/{prefix}_{cam.unit}{i:03d}.jpg", scene_kind=kinds[(c + i) % len(kinds)]))
    # Portraits: pixels turned (90 and 270) and one kept in sensor orientation with an EXIF tag.
    shots.append(_Shot(a0, f"{folders[a0]}/IMG_0900.jpg", orientation=90, scene_kind="texture"))
    shots.append(_Shot(b0, f"{folders[b0]}/IMG_0901.jpg", orientation=270, scene_kind="photo"))
    shots.append(
        _Shot(a1, f"{folders[a1]}/portrait_exif_only.jpg", orientation=90, rotate_pixels=False, scene_kind="texture")
    )
    # Edited copies: crops at an arbitrary offset, and one downscaled image.
    # (Well-exposed, detailed scenes: a crop or a downscale keeps less of the PRNU, and the demo
    # should show these matches found, not lost to an unlucky dark scene.)
    shots.append(
        _Shot(
            a0,
            "evidence/laptop/Pictures/edited/crop_a.jpg",
            crop=(w // 5, h // 7, (2 * w) // 3, (2 * h) // 3),
            scene_kind="wall",
        )
    )
    shots.append(
        _Shot(
            b0,
            "evidence/laptop/Pictures/edited/crop_b.jpg",
            crop=(w // 7, h // 9, (3 * w) // 4, (3 * h) // 4),
            scene_kind="sky",
        )
    )
    shots.append(_Shot(c0, "evidence/usb_stick/photos/small/resized_c.jpg", scale=0.6, scene_kind="wall"))
    # Cameras that were not seized: a third unit of the twins' model, and another model.
    twin, other = unenrolled
    shots.append(_Shot(twin, "evidence/usb_stick/photos/from_friend/IMG_7001.jpg"))
    shots.append(_Shot(twin, "evidence/usb_stick/photos/from_friend/IMG_7002.jpg"))
    for i in range(3):
        shots.append(_Shot(other, f"evidence/downloads/unknown_{i}.jpg"))
    return shots


def _write_bad_files(root: Path, source_jpeg: Path) -> dict[str, None]:
    """Files a scan must report as unreadable (one line each) and go on."""
    bad = {
        "evidence/broken/empty.jpg": b"",
        "evidence/broken/truncated.jpg": source_jpeg.read_bytes()[: max(200, source_jpeg.stat().st_size * 2 // 5)],
        "evidence/broken/notes.jpg": b"Meeting notes, 3 March: this is a text file named like a photo.\n",
    }
    for rel, data in bad.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    tiny = root / "evidence/broken/tiny.jpg"
    with Image.open(source_jpeg) as img:
        img.convert("RGB").resize((32, 32), Image.Resampling.BOX).save(tiny, format="JPEG", quality=90)
    return {**{rel: None for rel in bad}, "evidence/broken/tiny.jpg": None}


def write_demo_case(
    root: str | Path,
    *,
    seed: int = 0,
    n_flat: int = 8,
    n_natural: int = 4,
    width: int = 1024,
    height: int = 768,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, str | None]:
    """Write the demo data under ``root`` and return its ground truth.

    Layout: ``reference/<camera>/`` with ``n_flat`` flat-field and ``n_natural`` natural
    JPEGs per enrolled camera (four cameras, two of them units of one model); ``evidence/``
    (nested folders) with natural JPEGs of the enrolled cameras (portraits, crops, one
    downscaled), JPEGs of two cameras that are not enrolled (one a twin of an enrolled
    camera), and bad files (empty, truncated JPEG, text named .jpg, a 32×32 image).

    Returns ``{relative path (POSIX): name of the camera that made it, or None}`` for
    every file written (None for the bad files). ``ground_truth.json`` in ``root`` holds
    the same map plus the enrolled and unenrolled camera names and each file's
    orientation, crop and scale. Deterministic from ``seed``.
    """
    root = Path(root)
    enrolled, unenrolled = demo_cameras(seed, width=width, height=height)
    shots = _plan(enrolled, unenrolled, n_flat, n_natural)
    total = len(shots) + 1
    truth: dict[str, str | None] = {}
    details: dict[str, dict] = {}
    for i, shot in enumerate(shots):
        scene = None
        if shot.scene_kind is not None:
            scene = make_scene(shot.scene_kind, shot.camera.width, shot.camera.height, seed * 100_003 + i)
            # A well-exposed picture: the demo shows what the method does with ordinary photos,
            # not how it loses a very dark one.
            scene *= np.float32(min(2.0, max(1.0, _MIN_MEAN_RADIANCE / max(float(scene.mean()), 1e-6))))
        shot.camera.save_jpeg(
            root / shot.relpath,
            flat=shot.flat,
            seed=seed * 100_003 + i,
            scene=scene,
            orientation=shot.orientation,
            rotate_pixels=shot.rotate_pixels,
            crop=shot.crop,
            scale=shot.scale,
        )
        truth[shot.relpath] = shot.camera.name
        details[shot.relpath] = {
            "camera": shot.camera.name,
            "flat": shot.flat,
            "orientation": shot.orientation,
            "pixels_rotated": shot.rotate_pixels and shot.orientation != 0,
            "crop": list(shot.crop) if shot.crop else None,
            "scale": shot.scale,
        }
        if progress is not None:
            progress(i + 1, total)
    source = root / next(s.relpath for s in shots if s.relpath.startswith("evidence/"))
    truth.update(_write_bad_files(root, source))
    for rel in truth:
        details.setdefault(rel, {"camera": None, "bad_file": True})
    (root / "ground_truth.json").write_text(
        json.dumps(
            {
                "seed": seed,
                "enrolled": [c.name for c in enrolled],
                "unenrolled": [c.name for c in unenrolled],
                "same_model_groups": [[c.name for c in enrolled[:2]] + [unenrolled[0].name]],
                "files": truth,
                "details": details,
            },
            indent=2,
        )
    )
    if progress is not None:
        progress(total, total)
    return truth
