"""The feature store through the team server: the read verbs of the local
:class:`~shipyard.features.service.Features` (``online``, ``get``, ``list``, ``glossary``),
with the same read models. Applying, materializing and building training data run beside the
project's stores."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard._internal.decode import decode, decode_many
from shipyard.client.connection import ServerConnection, segment
from shipyard.features.catalog import GlossaryEntry
from shipyard.features.definitions import FeatureView
from shipyard.features.service import OnlineFeatures

__all__ = ["RemoteFeatures"]


class RemoteFeatures:
    """Feature reads on the server: ``online``, ``get``, ``list``, ``glossary``."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def online(
        self, entity_rows: Sequence[Mapping[str, Any]], features: Sequence[str] | str
    ) -> OnlineFeatures:
        names = features.split(",") if isinstance(features, str) else builtins.list(features)
        body = {"entities": [dict(r) for r in entity_rows], "features": names}
        return decode(OnlineFeatures, self._conn.json("POST", "/features/online", json=body))

    def get(self, ref: str) -> FeatureView:
        return decode(FeatureView, self._conn.json("GET", f"/features/views/{segment(ref)}"))

    def list(self) -> builtins.list[FeatureView]:
        return decode_many(FeatureView, self._conn.json("GET", "/features/views"))

    def glossary(self) -> builtins.list[GlossaryEntry]:
        return decode_many(GlossaryEntry, self._conn.json("GET", "/features/glossary"))
