"""``python -m shipyard`` runs the command line."""

from shipyard.cli.main import run

run()
