"""Collaboration: the generated documentation site and the team digest."""
