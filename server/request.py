"""``JsonRequest``: the application's request class. Litestar decodes a JSON body with
msgspec and catches only ``msgspec.DecodeError``; a body nested too deeply to decode raises
``RecursionError`` there, which became a 500. Here it is a 400 naming the problem
(``hub/deep_json.py``), rendered by the error table like any ``ValidationError``."""

from __future__ import annotations

from typing import Any

from litestar import Request

from hub.deep_json import refuse_deep_json


class JsonRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        with refuse_deep_json("the request body"):
            return await super().json()
