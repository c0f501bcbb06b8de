"""Analysis: explain, diff and why-dropped, as rules over what `query` returns. Plain functions
the API serves, so a script and the CLI get the same answers. Deterministic, rules only."""
