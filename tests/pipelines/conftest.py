"""The command-line fixtures of tests/cli, for the pipeline commands."""

from tests.cli.conftest import cli, cli_project

__all__ = ["cli", "cli_project"]
