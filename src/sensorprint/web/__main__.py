"""`python -m sensorprint.web CASE [--host H] [--port P]`: what `sensorprint serve` runs."""

from __future__ import annotations

import argparse
import sys

from sensorprint.errors import SensorprintError
from sensorprint.web import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sensorprint serve", description="Serve a case in a local web interface.")
    parser.add_argument("case", help="the case directory")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: any free one)")
    args = parser.parse_args(argv)
    try:
        serve(args.case, host=args.host, port=args.port, announce=lambda line: print(line, flush=True))
    except SensorprintError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
