"""Flask blueprints: parse the request, call one function, answer. No business rules here."""
