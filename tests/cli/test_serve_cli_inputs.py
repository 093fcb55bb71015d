"""Route weights (``ALIAS=WEIGHT`` pairs, read by :func:`parse_routes`) and `shipyard
deployments metrics --window` refuse what they cannot read with a usage error that shows the
expected form, never an unexpected error."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from shipyard.cli.deployments import parse_routes
from tests.cli.conftest import Cli


@pytest.mark.parametrize(
    "route",
    [
        pytest.param("production=²", id="superscript-two"),
        pytest.param("production=١٢", id="arabic-indic-digits"),
        pytest.param("production=-5", id="negative"),
        pytest.param("production=1.5", id="fraction"),
        pytest.param("production=" + "9" * 5000, id="five-thousand-digits"),
    ],
)
def test_a_route_weight_that_is_not_a_whole_number_is_a_usage_error(route: str) -> None:
    """A weight in digits other than 0-9, negative, fractional or absurdly long is a usage
    error (exit 2 on the command line) showing the expected ALIAS=WEIGHT form."""
    with pytest.raises(typer.BadParameter, match="expected ALIAS=WEIGHT pairs"):
        parse_routes(route)


def test_serve_takes_no_routes_of_its_own(cli: Cli, cli_project: Path) -> None:
    """`serve --route` is no longer an option (deployments carry the routes): exit 2."""
    res = cli("serve", "credit-risk", "--route", "production=100")
    assert res.code == 2, res.stderr
    assert "--route" in res.stderr


@pytest.mark.parametrize(
    "window",
    [
        pytest.param("²h", id="superscript-two"),
        pytest.param("１h", id="fullwidth-one"),
        pytest.param("9" * 400 + "h", id="beyond-a-double"),
    ],
)
def test_a_window_that_is_not_a_number_of_units_is_a_usage_error(
    cli: Cli, cli_project: Path, window: str
) -> None:
    """`deployments metrics NAME --window ²h` exits 2 showing the expected form."""
    res = cli("deployments", "metrics", "credit-risk", "--window", window)
    assert res.code == 2, res.stderr
    assert "expected a window like 30m, 1h or 7d" in res.stderr
    assert "unexpected" not in res.stderr


def test_a_window_in_plain_digits_is_still_read(cli: Cli, cli_project: Path) -> None:
    """`--window 1.5h` is understood: the command gets as far as looking up the deployment."""
    res = cli("deployments", "metrics", "credit-risk", "--window", "1.5h")
    assert res.code == 1
    assert "no deployment 'credit-risk'" in res.stderr
