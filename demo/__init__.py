"""The X-Ray demo: a competitor-selection pipeline with a plausible bug, instrumented with the
SDK exactly as a user would instrument theirs. `xray demo` runs it and explains its failures."""
