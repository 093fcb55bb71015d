"""Generated documentation: the project as a static HTML catalog that opens from disk.

``project.docs.build("site")`` (``shipyard docs build -o site/``) gathers every dataset with
its versions, column descriptions, contracts and profiles; every contract; every model with
its versions, cards and lineage; the deployments; and a glossary of column definitions with
their owners. :mod:`shipyard.collaboration.docs_pages` renders them; this module writes the
result. The same project always gives the same bytes: nothing of the build itself (time,
folder, user) is written, and everything is sorted.

Writing never leaves a half-built site: the pages go to a temporary folder beside the output,
which is then renamed into place. An existing folder is replaced only with ``force`` and only
when it holds a previous build (its manifest, ``shipyard-docs.json``, names every file in it),
so a mistyped ``-o`` cannot delete unrelated files.

Like every other metadata read (``datasets.get``, ``models.get``), building the site records
no access event: it reads the stored profiles, never the data itself.

>>> project.docs.build("site").pages                     # doctest: +SKIP
14
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard._internal.encode import ReadModel
from shipyard.errors import ConflictError, InvalidInputError

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.contract_registry import Contracts, ContractVersion
    from shipyard.data.datasets import Datasets
    from shipyard.data.versions import DatasetVersion
    from shipyard.features.catalog import GlossaryEntry
    from shipyard.features.service import Features
    from shipyard.governance.cards import Cards
    from shipyard.governance.deployments import Deployments, DeploymentStatus
    from shipyard.registry.models import Models
    from shipyard.registry.versions import AliasEvent, ModelSummary, ModelVersion

__all__ = [
    "MANIFEST",
    "Catalog",
    "ContractDoc",
    "DatasetDoc",
    "DatasetVersionDoc",
    "DocsSite",
    "GlossaryTerm",
    "ModelDoc",
    "ModelVersionDoc",
    "SiteBuild",
]

#: The file that marks a folder as a docs build, listing every file of it.
MANIFEST = "shipyard-docs.json"
GENERATOR = "shipyard docs"


@dataclass(frozen=True)
class DatasetVersionDoc(ReadModel):
    """A dataset version as documented: the version, the contract that governs it and the
    column descriptions that contract gives, and its lineage (parents and children)."""

    version: DatasetVersion
    contract: str | None
    descriptions: dict[str, str]
    lineage: dict[str, Any]


@dataclass(frozen=True)
class DatasetDoc(ReadModel):
    """A dataset: the contract bound to it and its versions, oldest first."""

    name: str
    binding: str | None
    versions: list[DatasetVersionDoc]


@dataclass(frozen=True)
class ContractDoc(ReadModel):
    """A contract and its versions, oldest first."""

    name: str
    versions: list[ContractVersion]


@dataclass(frozen=True)
class ModelVersionDoc(ReadModel):
    """A model version with its card (Markdown) and lineage."""

    version: ModelVersion
    card: str
    lineage: dict[str, Any]


@dataclass(frozen=True)
class ModelDoc(ReadModel):
    """A registered model, its versions (oldest first) and the history of its aliases."""

    summary: ModelSummary
    versions: list[ModelVersionDoc]
    alias_history: list[AliasEvent]


@dataclass(frozen=True)
class GlossaryTerm(ReadModel):
    """One defined name (a column; a feature once features are catalogued) with each
    definition of it: ``source`` (the contract), ``type``, ``description``, ``owner``, and the
    datasets bound to that contract."""

    name: str
    kind: str
    definitions: list[dict[str, Any]]


@dataclass(frozen=True)
class Catalog(ReadModel):
    """Everything the documentation site shows, sorted by name."""

    project: str
    datasets: list[DatasetDoc]
    contracts: list[ContractDoc]
    models: list[ModelDoc]
    deployments: list[DeploymentStatus]
    glossary: list[GlossaryTerm]


@dataclass(frozen=True)
class SiteBuild(ReadModel):
    """What :meth:`DocsSite.build` wrote: the folder, its HTML pages and files, their total
    size, whether a previous build was replaced, and how many of each entity it documents."""

    output: str
    pages: int
    files: int
    bytes: int
    replaced: bool
    counts: dict[str, int] = field(default_factory=dict)


class DocsSite:
    """Service for the documentation site: ``catalog`` (what it shows) and ``build``."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        datasets: Datasets,
        contracts: Contracts,
        models: Models,
        cards: Cards,
        deployments: Deployments,
        features: Features | None = None,
    ) -> None:
        self._ctx = ctx
        self._features = features
        self._datasets = datasets
        self._contracts = contracts
        self._models = models
        self._cards = cards
        self._deployments = deployments

    def catalog(self) -> Catalog:
        """The project as the site documents it."""
        contracts = [
            ContractDoc(c.name, self._contracts.versions(c.name)) for c in self._contracts.list()
        ]
        by_ref = {v.ref: v for doc in contracts for v in doc.versions}
        datasets = [
            DatasetDoc(
                s.name,
                s.contract,
                [self._dataset_version(v, by_ref) for v in self._datasets.versions(s.name)],
            )
            for s in self._datasets.list()
        ]
        models = [
            ModelDoc(
                m,
                [
                    ModelVersionDoc(
                        v, self._cards.render(v.ref, "markdown"), self._models.lineage(v.ref)
                    )
                    for v in self._models.versions(m.name)
                ],
                self._models.alias_history(m.name),
            )
            for m in self._models.list()
        ]
        deployments = [
            self._deployments.show(d.name)
            for d in sorted(self._deployments.list(), key=lambda d: d.name)
        ]
        return Catalog(
            self._ctx.settings.name,
            sorted(datasets, key=lambda d: d.name),
            sorted(contracts, key=lambda c: c.name),
            sorted(models, key=lambda m: m.summary.name),
            deployments,
            glossary(contracts, self._features.glossary() if self._features else []),
        )

    def _dataset_version(
        self, v: DatasetVersion, contracts: dict[str, ContractVersion]
    ) -> DatasetVersionDoc:
        governing = self._datasets.governing_contracts(v.ref) if v.kind == "table" else []
        contract = governing[0].contract if governing else None
        spec = contracts[contract].spec if contract in contracts else {}
        descriptions = {
            name: str(col.get("description") or "")
            for name, col in (spec.get("columns") or {}).items()
            if col.get("description")
        }
        return DatasetVersionDoc(v, contract, descriptions, self._datasets.lineage(v.ref))

    def build(self, output: str | os.PathLike[str], *, force: bool = False) -> SiteBuild:
        """Write the site to the folder ``output`` (created; its parent must exist).

        Raises:
            ConflictError: ``output`` exists and is not empty, and ``force`` is false; or it
                is not a previous docs build (then it is never replaced).
            InvalidInputError: ``output`` is a file, or its parent folder does not exist.
        """
        from shipyard.collaboration.docs_pages import render_site

        out = Path(output).expanduser().absolute()
        replaced = _check_output(out, force=force)
        catalog = self.catalog()
        files = render_site(catalog)
        files[MANIFEST] = _manifest(sorted([*files, MANIFEST]))
        tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:12]}")
        try:
            for rel, content in sorted(files.items()):
                path = tmp / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            _swap_into_place(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return SiteBuild(
            str(out),
            pages=sum(1 for rel in files if rel.endswith(".html")),
            files=len(files),
            bytes=sum(len(c) for c in files.values()),
            replaced=replaced,
            counts={
                "datasets": len(catalog.datasets),
                "dataset_versions": sum(len(d.versions) for d in catalog.datasets),
                "contracts": len(catalog.contracts),
                "models": len(catalog.models),
                "model_versions": sum(len(m.versions) for m in catalog.models),
                "deployments": len(catalog.deployments),
                "glossary_terms": len(catalog.glossary),
            },
        )


def glossary(
    contracts: builtins.list[ContractDoc], features: Sequence[GlossaryEntry] = ()
) -> builtins.list[GlossaryTerm]:
    """Every column the latest version of a contract defines, with each contract's
    definition and owner, and every feature of the latest feature views (``kind="feature"``,
    named ``view:feature``, defined in its view version), sorted by name
    (case-insensitively).
    """
    terms: dict[str, builtins.list[dict[str, Any]]] = {}
    kinds: dict[str, str] = {}
    for entry in features:
        kinds[entry.feature] = "feature"
        terms.setdefault(entry.feature, []).append(
            {
                "source": entry.view,
                "type": entry.type,
                "description": entry.description,
                "owner": entry.owner,
                "datasets": [entry.source.split("@")[0]],
            }
        )
    for doc in contracts:
        latest = doc.versions[-1]
        for name, col in (latest.spec.get("columns") or {}).items():
            terms.setdefault(name, []).append(
                {
                    "source": latest.ref,
                    "type": col.get("type"),
                    "description": col.get("description") or "",
                    "owner": latest.spec.get("owner"),
                    "datasets": sorted(latest.bound_to),
                }
            )
    return [
        GlossaryTerm(name, kinds.get(name, "column"), sorted(defs, key=lambda d: str(d["source"])))
        for name, defs in sorted(terms.items(), key=lambda kv: (kv[0].lower(), kv[0]))
    ]


def _manifest(paths: builtins.list[str]) -> bytes:
    doc = {"generator": GENERATOR, "files": paths}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def _check_output(out: Path, *, force: bool) -> bool:
    """Whether ``out`` holds a build to replace; refuse what must not be touched."""
    if not out.parent.is_dir():
        raise InvalidInputError(f"cannot write the docs to {out}: {out.parent} is not a folder")
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"cannot write the docs to {out}: it is a file; choose a folder")
    if not out.exists() or not any(out.iterdir()):
        return False
    listed = _previous_build(out)
    if listed is None:
        raise ConflictError(
            f"{out} is not empty and is not a shipyard docs build (no valid {MANIFEST}); "
            "it was left untouched: choose another folder with -o"
        )
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if not p.is_dir()}
    extra = sorted(present - listed)
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise ConflictError(
            f"{out} holds a docs build and files it did not write ({shown}); it was left "
            "untouched: move them out, or choose another folder with -o"
        )
    if not force:
        raise ConflictError(f"{out} already holds a docs build; pass --force to replace it")
    return True


def _previous_build(out: Path) -> set[str] | None:
    """The files a previous build's manifest lists, or None if ``out`` holds no build."""
    try:
        doc = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("generator") != GENERATOR:
        return None
    files = doc.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished build ``tmp`` to ``out``; a previous build is moved aside first and
    deleted only once the new one is in place."""
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:12]}")
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
