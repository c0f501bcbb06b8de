"""A tiny HTTP client over urllib for end-to-end tests against a real server."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from typing import Any


def call(base_url: str, method: str, path: str, body: Any = None, *, compress: bool = False) -> tuple[int, Any]:
    data, headers = None, {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
        if compress:
            data = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
