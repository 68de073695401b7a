"""Adapters: one module per backend engine, chosen by URL scheme in `registry`."""
