"""api.compat."""
