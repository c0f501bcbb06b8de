"""X-Ray benchmarks: `python -m bench --help`. Figures go to BENCHMARKS.md, never into tests."""
