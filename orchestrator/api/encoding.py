"""JSON responses encoded with orjson (through `jsonwire`, the project's one JSON codec).

FastAPI's own `ORJSONResponse` is deprecated; this is the same few lines kept here.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from orchestrator import jsonwire

__all__ = ["OrjsonResponse"]


class OrjsonResponse(JSONResponse):
    """`application/json` rendered by orjson."""

    def render(self, content: Any) -> bytes:
        """orjson bytes of `content`."""
        return jsonwire.dumps(content)
