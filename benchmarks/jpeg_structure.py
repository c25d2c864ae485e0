"""JPEG structure as corroboration: each natural image of the shared data against each device's flats.

For every natural image of dresden-nikon and vision-trio, and every device of both (its
10 flats as references), `media.structure.compare_structure` answers consistent,
inconsistent, edited or unknown. Prints the answers for true pairs, for wrong pairs of the
same camera model (the other unit), and for wrong pairs of other models.

    .venv/bin/python benchmarks/jpeg_structure.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

from sensorprint.media.image import read_image
from sensorprint.media.structure import compare_structure

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def device_of(path: Path) -> str:
    name = path.stem
    return name.split("_", 1)[0] if path.parent.parent.name == "vision-trio" else name.rsplit("_", 1)[0]


def model_of(device: str) -> str:
    return device.rsplit("_", 1)[0] if device.startswith("Nikon") else device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    references = collections.defaultdict(list)
    for path in sorted(args.data.glob("*/flat/*")):
        references[device_of(path)].append(read_image(path).medium.metadata)
    counts: collections.Counter = collections.Counter()
    for path in sorted(args.data.glob("*/natural/*")):
        metadata, truth = read_image(path).medium.metadata, device_of(path)
        for device, refs in references.items():
            kind = "true" if device == truth else "same model" if model_of(device) == model_of(truth) else "other model"
            counts[(kind, str(compare_structure(metadata, refs).state))] += 1
    for (kind, state), n in sorted(counts.items()):
        print(f"{kind:12s} {state:13s} {n}")
    print(
        f"true_consistent={counts[('true', 'consistent')]}/{sum(n for (k, _), n in counts.items() if k == 'true')} "
        f"same_model_consistent={counts[('same model', 'consistent')]} "
        f"other_model_inconsistent={counts[('other model', 'inconsistent')]}/"
        f"{sum(n for (k, _), n in counts.items() if k == 'other model')}"
    )


if __name__ == "__main__":
    main()
