"""The ``shipyard`` command line: thin commands over the services (Typer + Rich)."""
