"""Regenerate the README's screenshots of the web UI (``make screenshots``).

Builds the ``shipyard demo`` project in a temporary folder, serves its UI on 127.0.0.1 (the
app of ``shipyard ui``: the OS user, no login) and saves PNGs into this folder with Debian's
Chromium driven by Playwright:

- ``model-page.png``: the production version of credit-risk (gates, evaluation charts);
- ``runs-compare.png``: the comparison of the demo's training runs (``/runs/compare``).

Not part of ``make test``; it needs the dev extras (Playwright) and ``/usr/bin/chromium``
(``SHIPYARD_CHROMIUM`` names another). Usage: ``python docs/img/screenshots.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn

from shipyard.demo.scenario import run_demo
from shipyard.project import Project, open_project
from shipyard.server.app import create_app

HERE = Path(__file__).parent
CHROMIUM = os.environ.get("SHIPYARD_CHROMIUM", "/usr/bin/chromium")
MODEL = "credit-risk"
#: The most runs the comparison shows (the page takes 2 to 20).
MAX_COMPARED = 5
#: Bounds on waiting for the server to start and a page's charts to be drawn (seconds).
START_SECONDS = 20
DRAW_MS = 20_000
#: Size of the pictures: the page's width, and its top down to this height at most (pixels).
WIDTH = 1400
MAX_HEIGHT = 2600


@contextlib.contextmanager
def serving(project: Project) -> Iterator[tuple[str, str]]:
    """The UI of ``shipyard ui`` over ``project`` on a free port of 127.0.0.1: its base URL
    and the launch key that lets a browser in."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(project, ui_actor=project.actor)
    key = app.state.ui.local_key
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.should_exit = True
            raise SystemExit(f"the UI did not start within {START_SECONDS} s")
        time.sleep(0.1)
    try:
        yield url, key
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def compared_runs(project: Project) -> list[str]:
    """The ids of the runs of the experiment that trained the production model."""
    production = project.models.get(f"{MODEL}@production")
    if production.run_id is None:
        return []
    experiment = project.runs.get(production.run_id).experiment
    return [r.id for r in project.runs.list(experiment=experiment, limit=MAX_COMPARED)]


def shoot(page: Any, path: str, target: Path) -> None:
    """Open ``path``, wait until plotly drew every chart on it, save a PNG at ``target``."""
    page.goto(path)
    page.wait_for_function(
        "document.querySelectorAll('.chart').length === "
        "document.querySelectorAll('.js-plotly-plot').length",
        timeout=DRAW_MS,
    )
    height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_HEIGHT)
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": height}
    page.screenshot(path=str(target), full_page=True, clip=clip)
    print(f"wrote {target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="applicants in the demo")
    parser.add_argument("--out", type=Path, default=HERE, help="where the PNGs go")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="shipyard-screenshots-") as tmp:
        print("building the demo project (about a minute)…")
        with contextlib.redirect_stdout(io.StringIO()):
            root = run_demo(Path(tmp) / "demo", rows=args.rows)
        project = open_project(root)
        try:
            model_page = f"/models/{MODEL}/{project.models.get(f'{MODEL}@production').version}"
            runs = compared_runs(project)
            with serving(project) as (url, key), sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(base_url=url, viewport={"width": WIDTH, "height": 900})
                page.goto(f"/local-login?key={key}")
                shoot(page, model_page, args.out / "model-page.png")
                compare = "/runs/compare?" + urlencode([("run", r) for r in runs])
                answer = httpx.get(url + compare, cookies={"shipyard_local": key})
                if len(runs) < 2 or answer.status_code != 200:
                    raise SystemExit(
                        f"the comparison of the demo's runs ({len(runs)} runs) answered "
                        f"{answer.status_code}: {answer.text[:200]}"
                    )
                shoot(page, compare, args.out / "runs-compare.png")
                browser.close()
        finally:
            project.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
