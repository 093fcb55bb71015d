"""The server's JSON response: serialised with orjson (read models are already JSON-ready
values, so no validation pass is needed on the way out)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from shipyard._internal.json_numbers import to_json

__all__ = ["JSON"]


class JSON(Response):
    """``application/json`` written by orjson. NaN and infinities, which JSON lacks, are
    written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, as MLflow's server
    writes them (orjson alone would write ``null``; see :mod:`shipyard._internal.json_numbers`)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(to_json(content), default=str, option=orjson.OPT_SERIALIZE_NUMPY)
