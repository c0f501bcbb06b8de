"""The HTTP layer: the app factory, routes that parse, call one function and answer, request
reading, the one error shape, and the OpenAPI document. No business rule lives here."""
