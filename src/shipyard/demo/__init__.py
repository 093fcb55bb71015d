"""The synthetic data and end-to-end scenario behind ``shipyard demo``."""
