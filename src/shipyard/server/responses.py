"""The server's JSON response: serialised with orjson (read models are already JSON-ready
values, so no validation pass is needed on the way out)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["JSON"]


class JSON(Response):
    """``application/json`` written by orjson; NaN and infinities become null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
