"""``python -m shipyard`` runs the command line."""

from shipyard.cli.entry import main

main()
