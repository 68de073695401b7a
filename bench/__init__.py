"""Benchmarks of OBP's hot paths, each against a baseline measured in the same run."""
