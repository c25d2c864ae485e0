"""The words of the command line: what each use case returned, as lines for the terminal.

The workflow returns data (summaries, verdicts); this module alone turns them into
sentences, so the web interface and the JSON output can use the same data unparsed.
"""

from __future__ import annotations
