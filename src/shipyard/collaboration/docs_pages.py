"""The documentation site's pages, rendered from a :class:`~.docs_site.Catalog`.

Jinja2 templates (``templates/docs/``, autoescaped), one stylesheet and one small search script
(``static/docs/``). Every link is relative, so the site opens from disk (``file://``) and from
any web server folder. The search index is a script (``search-index.js``) rather than JSON,
because browsers refuse ``fetch`` on ``file://`` pages but load scripts; the pages carry no
inline script or style, so they also work under a strict Content-Security-Policy.

Layout of the site::

    index.html  glossary.html  deployments.html  search-index.js  assets/{site.css,search.js}
    datasets/index.html  datasets/NAME/index.html  datasets/NAME/vN.html
    contracts/index.html contracts/NAME.html (#vN per version)
    models/index.html    models/NAME/index.html    models/NAME/vN.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from shipyard._internal.hashing import digest_bytes
from shipyard._internal.markdown import render_markdown

if TYPE_CHECKING:
    from jinja2 import Environment

    from shipyard.collaboration.docs_site import Catalog

__all__ = [
    "ASSETS",
    "SEARCH_INDEX",
    "contract_url",
    "dataset_url",
    "model_url",
    "render_site",
    "term_anchor",
]

SEARCH_INDEX = "search-index.js"
ASSETS = ("site.css", "search.js")


def dataset_url(name: str, version: int | None = None) -> str:
    return f"datasets/{name}/index.html" if version is None else f"datasets/{name}/v{version}.html"


def model_url(name: str, version: int | None = None) -> str:
    return f"models/{name}/index.html" if version is None else f"models/{name}/v{version}.html"


def contract_url(name: str, version: int | None = None) -> str:
    return f"contracts/{name}.html" + ("" if version is None else f"#v{version}")


def term_anchor(name: str) -> str:
    """A stable element id for a glossary term; column names may hold any character, so names
    that are not already safe get a short digest to stay unique."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", name)
    if slug != name or not slug:
        slug += "-" + digest_bytes(name.encode()).split(":", 1)[1][:8]
    return f"term-{slug}"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("shipyard.collaboration", "templates/docs"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.filters["when"] = lambda dt: "" if dt is None else f"{dt:%Y-%m-%d %H:%M} UTC"
    env.filters["short"] = lambda digest: str(digest).split(":", 1)[-1][:12]
    env.filters["pretty"] = lambda doc: json.dumps(doc, indent=2, sort_keys=True, default=str)
    env.filters["markdown"] = _markdown
    env.filters["anchor"] = term_anchor
    return env


def _markdown(text: str) -> Any:
    from markupsafe import Markup

    return Markup(render_markdown(text))  # sanitised by render_markdown


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_site(catalog: Catalog) -> dict[str, bytes]:
    """Every file of the site (path relative to its root → bytes), the same for the same
    catalog."""
    env = _environment()
    known: set[str] = set()
    pages: list[tuple[str, str, dict[str, Any]]] = [
        ("index.html", "index.html", {"title": "Overview"}),
        ("datasets/index.html", "datasets.html", {"title": "Datasets"}),
        ("contracts/index.html", "contracts.html", {"title": "Contracts"}),
        ("models/index.html", "models.html", {"title": "Models"}),
        ("deployments.html", "deployments.html", {"title": "Deployments"}),
        ("glossary.html", "glossary.html", {"title": "Glossary"}),
    ]
    for ds in catalog.datasets:
        pages.append((dataset_url(ds.name), "dataset.html", {"title": ds.name, "ds": ds}))
        for dv in ds.versions:
            v = dv.version
            pages.append(
                (
                    dataset_url(ds.name, v.version),
                    "dataset_version.html",
                    {"title": v.ref, "dv": dv},
                )
            )
    for c in catalog.contracts:
        pages.append((contract_url(c.name), "contract.html", {"title": c.name, "c": c}))
    for m in catalog.models:
        name = m.summary.name
        pages.append((model_url(name), "model.html", {"title": name, "m": m}))
        for mv in m.versions:
            ref = mv.version.ref
            pages.append(
                (
                    model_url(name, mv.version.version),
                    "model_version.html",
                    {"title": ref, "mv": mv},
                )
            )
    known.update(path for path, _, _ in pages)
    terms = {t.name for t in catalog.glossary}

    def link(target: str, here: str) -> str:
        return "../" * here.count("/") + target

    def node_url(node: str) -> str | None:
        """The page of a lineage node (``dataset:credit@1``, ``model:m@2``), if it has one."""
        kind, _, ref = node.partition(":")
        name, _, version = ref.partition("@")
        if not version.isdigit():
            return None
        url = {"dataset": dataset_url, "model": model_url}.get(kind)
        target = url(name, int(version)) if url else None
        return target if target in known else None

    def ref_url(kind: str, ref: str | None) -> str | None:
        """The page of a ``name@N`` reference of ``kind`` (dataset, model, contract)."""
        if not ref:
            return None
        name, _, version = ref.partition("@")
        if kind == "contract":
            return contract_url(name, int(version)) if contract_url(name) in known else None
        return node_url(f"{kind}:{ref}")

    out: dict[str, bytes] = {}
    for path, template, context in pages:
        here = path
        out[path] = (
            env.get_template(template)
            .render(
                catalog=catalog,
                project=catalog.project,
                root="../" * path.count("/"),
                here=here,
                url=_bound(link, here),
                node_url=node_url,
                ref_url=ref_url,
                dataset_url=dataset_url,
                model_url=model_url,
                contract_url=contract_url,
                exists=known.__contains__,
                terms=terms,
                **context,
            )
            .encode()
        )
    out[SEARCH_INDEX] = _search_index(catalog)
    assets = resources.files("shipyard.collaboration") / "static" / "docs"
    for name in ASSETS:
        out[f"assets/{name}"] = (assets / name).read_bytes()
    return out


def _bound(link: Callable[[str, str], str], here: str) -> Callable[[str], str]:
    return lambda target: link(target, here)


def _search_index(catalog: Catalog) -> bytes:
    """The client-side search index: one entry per page or glossary term, ``t`` title, ``k``
    kind, ``u`` URL from the site root, ``x`` the words it is found by."""
    entries: list[dict[str, str]] = []

    def add(title: str, kind: str, url: str, *words: Any) -> None:
        text = " ".join(str(w) for w in words if w not in (None, ""))
        entries.append({"t": title, "k": kind, "u": url, "x": text})

    for ds in catalog.datasets:
        latest = ds.versions[-1].version
        add(ds.name, "dataset", dataset_url(ds.name), latest.message, ds.binding, *latest.columns)
        for dv in ds.versions:
            v = dv.version
            add(
                v.ref,
                "dataset version",
                dataset_url(ds.name, v.version),
                v.message,
                v.status,
                dv.contract,
                *v.columns,
                *dv.descriptions.values(),
                *(f"{k}={val}" for k, val in sorted(v.tags.items())),
            )
    for c in catalog.contracts:
        spec = c.versions[-1].spec
        columns = spec.get("columns") or {}
        add(
            c.name,
            "contract",
            contract_url(c.name),
            spec.get("description"),
            spec.get("owner"),
            *columns,
            *(col.get("description") for col in columns.values()),
        )
    for m in catalog.models:
        add(m.summary.name, "model", model_url(m.summary.name), *m.summary.aliases)
        for mv in m.versions:
            model = mv.version
            add(
                model.ref,
                "model version",
                model_url(model.name, model.version),
                model.description,
                model.flavor,
                model.status,
                *model.aliases,
                *model.metrics,
            )
    for d in catalog.deployments:
        dep = d.deployment
        add(
            dep.name,
            "deployment",
            f"deployments.html#deployment-{dep.name}",
            dep.model,
            *dep.aliases,
        )
    for term in catalog.glossary:
        add(
            term.name,
            term.kind,
            f"glossary.html#{term_anchor(term.name)}",
            *(d["description"] for d in term.definitions),
            *(d["owner"] for d in term.definitions),
            *(d["source"] for d in term.definitions),
        )
    order = {"dataset": 0, "contract": 1, "model": 2, "deployment": 3}
    entries.sort(key=lambda e: (order.get(e["k"], 4), e["k"], e["t"].lower(), e["t"], e["u"]))
    body = json.dumps(entries, indent=0, sort_keys=True, ensure_ascii=True)
    return f"window.SHIPYARD_SEARCH_INDEX = {body};\n".encode()
