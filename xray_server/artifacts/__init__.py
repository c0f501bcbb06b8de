"""The cold tier: the stores (local folder, S3), the writer that works within a request's
budget after commit, the sweep of rows a crash left pending, retention, and reading back."""
