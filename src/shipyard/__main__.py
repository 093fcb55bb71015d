"""``python -m shipyard`` runs the command line."""

from shipyard.cli.entry import run

run()
