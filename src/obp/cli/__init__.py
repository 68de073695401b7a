"""The `obp` command line."""
