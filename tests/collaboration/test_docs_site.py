"""``shipyard docs build``: a static catalog of the project that opens from disk, with a page
for every dataset, contract and model, links that resolve to files, a glossary of the columns
contracts define, a client-side search index, identical bytes on a rebuild, and an output
folder that is replaced only when it holds a previous build."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from shipyard.collaboration.docs_pages import term_anchor
from shipyard.collaboration.docs_site import MANIFEST
from shipyard.errors import ConflictError, InvalidInputError
from tests.cli.conftest import Cli
from tests.collaboration.conftest import INCOME, OWNER, Busy

CHROMIUM = Path("/usr/bin/chromium")


class _Page(HTMLParser):
    """The links, element ids and scripts of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.inline_scripts = 0
        self.inline_handlers: list[str] = []
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(found["id"])
        for name in ("href", "src"):
            if found.get(name):
                self.links.append(str(found[name]))
        self.inline_handlers += [k for k in found if k.startswith("on") or k == "style"]
        self._in_script_without_src = tag == "script" and not found.get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script_without_src = False


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def site(busy: Busy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    busy.project.docs.build(out)
    return out


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_rebuild_of_an_unchanged_project_writes_identical_bytes(
    busy: Busy, site: Path, tmp_path: Path
) -> None:
    """Building again, elsewhere and in place with --force, gives the same files byte for
    byte: nothing of the build itself is written."""
    elsewhere = tmp_path / "again"
    busy.project.docs.build(elsewhere)
    first = files_of(site)
    assert files_of(elsewhere) == first
    result = busy.project.docs.build(site, force=True)
    assert result.replaced
    assert files_of(site) == first
    assert json.loads(first[MANIFEST])["files"] == sorted(first)


def test_every_dataset_version_contract_and_model_version_has_a_page(
    busy: Busy, site: Path
) -> None:
    """Each dataset and each of its versions, each contract, each model and each of its
    versions has its page, titled with its reference."""
    project = busy.project
    expected = ["index.html", "glossary.html", "deployments.html"]
    for ds in project.datasets.list():
        expected.append(f"datasets/{ds.name}/index.html")
        expected += [
            f"datasets/{ds.name}/v{v.version}.html" for v in project.datasets.versions(ds.name)
        ]
    expected += [f"contracts/{c.name}.html" for c in project.contracts.list()]
    for m in project.models.list():
        expected.append(f"models/{m.name}/index.html")
        expected += [f"models/{m.name}/v{n}.html" for n in range(1, m.latest + 1)]
    for rel in expected:
        assert (site / rel).is_file(), rel
    assert "<title>credit@2 · proj</title>" in (site / "datasets/credit/v2.html").read_text()
    pages = [p for p in site.rglob("*.html")]
    assert len(pages) == len(
        set(expected) | {"datasets/index.html", "contracts/index.html", "models/index.html"}
    )


def test_every_link_resolves_to_a_file_and_every_anchor_to_an_element(site: Path) -> None:
    """Relative links only (the site opens from disk), each naming a file of the site, and a
    #fragment names an element id of that page."""
    pages = {p: parse(p) for p in site.rglob("*.html")}
    checked = 0
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc, f"{path}: absolute link {link}"
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            assert target.is_file(), f"{path.relative_to(site)}: broken link {link}"
            assert site.resolve() in target.parents
            if parts.fragment:
                assert unquote(parts.fragment) in pages[target].ids, f"{path}: {link}"
            checked += 1
    assert checked > 200


def test_pages_have_no_inline_script_or_style(site: Path) -> None:
    """Scripts come from files only and no element carries style or event attributes, so the
    site works under a strict Content-Security-Policy."""
    for path in site.rglob("*.html"):
        page = parse(path)
        assert page.inline_scripts == 0, path
        assert page.inline_handlers == [], path
        assert "Content-Security-Policy" in path.read_text()


def test_a_dataset_version_page_shows_descriptions_profile_validation_and_lineage(
    site: Path,
) -> None:
    """credit@2 names its contract, the income column's description, profile figures, the
    failed validation and its place in the lineage."""
    text = (site / "datasets/credit/v2.html").read_text()
    assert INCOME in text
    assert (
        "applicants-described@1" in text
        and 'href="../../contracts/applicants-described.html#v1"' in text
    )
    assert "failed" in text and "failing rows" in text
    assert "May batch" in text
    parent = (site / "datasets/credit/v1.html").read_text()
    assert 'href="../../datasets/credit.train/v1.html"' in parent


def test_a_model_version_page_holds_its_card_and_lineage(site: Path) -> None:
    """The card's sections are rendered as HTML, and the lineage links to the training data."""
    text = (site / "models/credit-risk/v1.html").read_text()
    assert "<h1>Model card: credit-risk@1</h1>" in text
    for title in ("Intended use", "Metrics", "Quantitative analyses", "Governance"):
        assert f"<h2>{title}</h2>" in text
    assert 'href="../../datasets/credit.train/v1.html"' in text
    history = (site / "models/credit-risk/index.html").read_text()
    assert "rollback" in history and "v2 hurts approvals" in history


def test_the_glossary_lists_defined_columns_with_their_owner(site: Path) -> None:
    """Each contract column appears once in the glossary, with its description, type, owner
    and the contract that defines it."""
    page = parse(site / "glossary.html")
    text = (site / "glossary.html").read_text()
    assert term_anchor("income") in page.ids
    row = text[text.index(f'id="{term_anchor("income")}"') :].split("</tr>")[0]
    assert INCOME in row and OWNER in row
    assert "applicants-described@1" in text


def test_the_search_index_holds_columns_datasets_models_and_glossary_terms(site: Path) -> None:
    """search-index.js assigns one JSON array: a column name finds its glossary entry and the
    dataset versions holding it; every entry's URL is a page of the site."""
    script = (site / "search-index.js").read_text()
    prefix = "window.SHIPYARD_SEARCH_INDEX = "
    assert script.startswith(prefix) and script.endswith(";\n")
    entries = json.loads(script[len(prefix) : -2])
    kinds = {e["k"] for e in entries}
    assert {"dataset", "dataset version", "contract", "model", "model version", "column"} <= kinds
    income = [e for e in entries if "income" in e["t"] or re.search(r"\bincome\b", e["x"])]
    assert any(e["k"] == "column" and e["t"] == "income" for e in income)
    assert any(e["t"] == "credit@1" for e in income)
    assert any(INCOME in e["x"] for e in income)
    for e in entries:
        assert (site / e["u"].split("#")[0]).is_file(), e


def test_an_unrelated_folder_is_never_replaced(busy: Busy, tmp_path: Path) -> None:
    """A non-empty folder without a docs manifest, or a build with files it did not write,
    is refused even with force, and left as it was."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("keep me")
    with pytest.raises(ConflictError, match="not a shipyard docs build"):
        busy.project.docs.build(folder, force=True)
    assert [p.name for p in folder.iterdir()] == ["todo.txt"]
    site = tmp_path / "site"
    busy.project.docs.build(site)
    (site / "mine.txt").write_text("added by hand")
    with pytest.raises(ConflictError, match=r"files it did not write \(mine.txt\)"):
        busy.project.docs.build(site, force=True)
    assert (site / "mine.txt").read_text() == "added by hand"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        busy.project.docs.build(tmp_path / "file")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_previous_build_needs_force_and_an_empty_folder_does_not(
    busy: Busy, tmp_path: Path
) -> None:
    """Without --force an existing build is kept; an existing empty folder is simply used."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not busy.project.docs.build(empty).replaced
    with pytest.raises(ConflictError, match="pass --force"):
        busy.project.docs.build(empty)
    assert (empty / "index.html").is_file()


def test_docs_build_on_the_command_line(
    busy: Busy, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`shipyard docs build -o DIR` reports what it wrote; --json prints one document; a
    second build without --force exits 1 naming the fix."""
    monkeypatch.chdir(busy.root)
    out = tmp_path / "site"
    res = cli("docs", "build", "-o", out)
    assert res.code == 0, res.stderr
    assert f"open {out / 'index.html'}" in res.stdout
    res = cli("docs", "build", "-o", out)
    assert res.code == 1 and "--force" in res.stderr
    res = cli("docs", "build", "-o", out, "--force", "--json")
    assert res.code == 0
    doc = res.json()
    assert doc["replaced"] and doc["counts"]["models"] == 1 and doc["pages"] > 10


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed")
def test_a_real_browser_opens_the_index_from_disk_and_searches(site: Path, tmp_path: Path) -> None:
    """Headless Chromium opens index.html?q=income from file:// (under the pages' own CSP)
    and the search script lists the income column and the datasets holding it."""
    url = (site / "index.html").as_uri() + "?q=income"
    proc = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = re.findall(
        r'class="result"><span class="kind">([^<]+)</span>([^<]+)</a>', proc.stdout
    )
    assert ("column", "income") in results
    assert ("dataset", "credit") in results
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
