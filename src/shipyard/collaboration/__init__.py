"""Collaboration: comments on entities, webhooks that tell other tools what changed, the
generated documentation site and the team digest."""
