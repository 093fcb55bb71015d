"""Collaboration: comments on entities and webhooks that tell other tools what changed."""
