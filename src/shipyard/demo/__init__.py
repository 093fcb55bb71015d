"""The synthetic data and end-to-end scenario behind ``shipyard demo``."""

__all__ = ["MIN_ROWS"]

# On fewer applicants the test split (15 %) holds too few of some groups (3 % are nonbinary)
# for the policy's fairness and no-regression checks to pass reliably: the story stops at a
# promotion it cannot make. 10,000 stops there; 20,000 and up pass. Here, not in the
# scenario, so that the command line's `--rows` bound reads it without importing the demo.
MIN_ROWS = 20_000
