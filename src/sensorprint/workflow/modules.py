"""A phone is several cameras: its wide, ultra-wide, telephoto and front modules are separate sensors.

Each module is enrolled as a device of its own, named ``PHONE/MODULE`` (`module_device`),
so that it has its own fingerprints, reference checks and decisions, and a match names the
module. The module of a file is its EXIF lens model (phones write one per module, e.g.
"iPhone 12 back dual wide camera 4.2mm f/1.6"); the focal length alone is not used, because
a zoom lens changes it on one sensor.

A query whose EXIF says it was made by a module of an enrolled phone that has no
references (same make and model as the phone's references, another lens model) cannot be
excluded by the other modules' fingerprints: their "no match" becomes inconclusive
(`unreferenced_module`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensorprint.errors import SensorprintError
from sensorprint.media.medium import probe

SEPARATOR = "/"


def module_key(metadata: Mapping[str, Any] | None) -> str | None:
    """The camera module a file's metadata names (its EXIF lens model, spaces collapsed), or None."""
    lens = (metadata or {}).get("lens_model")
    text = " ".join(str(lens).split()) if lens else ""
    return text or None


def module_device(phone: str, module: str | None) -> str:
    """The device name of one module of a phone (the phone's own name when the module is unknown)."""
    return f"{phone}{SEPARATOR}{module.replace(SEPARATOR, '-')}" if module else phone


def phone_of(device: str) -> str:
    """The phone a module device belongs to (the device itself when it is not a module)."""
    return device.split(SEPARATOR, 1)[0]


def by_module(files: list[str]) -> dict[str | None, list[str]]:
    """Reference files grouped by the module their metadata names (None: no lens model, or unreadable)."""
    groups: dict[str | None, list[str]] = {}
    for name in files:
        try:
            key = module_key(probe(Path(name)).metadata)
        except SensorprintError:
            key = None  # enrollment reads it again and gives its one-line error
        groups.setdefault(key, []).append(name)
    return groups


@dataclass(frozen=True)
class PhoneModules:
    """What a case knows of one phone: its enrolled modules and the make/model its references carry."""

    modules: frozenset[str]
    makes_models: frozenset[tuple[str, str]]


def phone_modules(references: Mapping[str, list[Mapping[str, Any]]]) -> dict[str, PhoneModules]:
    """{phone: its modules} from {device: metadata of its references}, for phones enrolled by module."""
    found: dict[str, tuple[set, set]] = {}
    for device, metas in references.items():
        modules, makes = found.setdefault(phone_of(device), (set(), set()))
        modules.update(k for k in (module_key(m) for m in metas) if k)
        makes.update((str(m.get("make")), str(m.get("model"))) for m in metas if m.get("make") and m.get("model"))
    return {phone: PhoneModules(frozenset(m), frozenset(mm)) for phone, (m, mm) in found.items() if m}


def unreferenced_module(metadata: Mapping[str, Any] | None, phone: PhoneModules) -> str | None:
    """The module of this phone model that made the file, when the phone has no references of it; else None."""
    module = module_key(metadata)
    make_model = (str((metadata or {}).get("make")), str((metadata or {}).get("model")))
    if module is None or module in phone.modules or make_model not in phone.makes_models:
        return None
    return module
