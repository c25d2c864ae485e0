"""How long-running use cases tell their caller how far they are.

Algorithms never print: a use case takes a `progress` callback and calls it with the
phase it is in, the units done and the units in all. The CLI draws rich progress bars
from it, the web interface would send it to the browser, the tests ignore it.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def no_progress(phase: str, done: int, total: int) -> None:
    """The default callback: says nothing."""
