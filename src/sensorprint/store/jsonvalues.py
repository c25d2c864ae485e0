"""JSON encoding of the plain values the workflow hands to the store.

The workflow passes numbers straight out of numpy (np.float32 PCE, np.int64
offsets, small arrays of frame indices). They are turned into plain JSON here,
once, so that every JSON column of the case and every report reads back the
same Python values on any machine.
"""

from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any

import numpy as np


def to_plain(value: Any) -> Any:
    """Return `value` with numpy scalars/arrays, paths, tuples and sets turned into JSON types.

    Sets become sorted lists so that the stored text does not depend on hash order.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(to_plain(v) for v in value)
    raise TypeError(f"cannot store a value of type {type(value).__name__} as JSON: {value!r}")


def dumps(value: Any) -> str:
    """Stable JSON text (sorted keys) for a JSON column. Non-finite floats are kept (Python reads them back)."""
    return json.dumps(to_plain(value), sort_keys=True, separators=(",", ":"))


def loads(text: str | None) -> Any:
    """The value of a JSON column; NULL reads as None."""
    if text is None:
        return None
    return json.loads(text)


def finite_or_none(value: Any) -> Any:
    """Replace NaN and infinities (recursively) by None so the result is strict JSON (RFC 8259)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    return value
