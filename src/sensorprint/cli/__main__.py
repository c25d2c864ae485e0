"""`python -m sensorprint.cli`: the same as the `sensorprint` command."""

from sensorprint.cli import main

main()
