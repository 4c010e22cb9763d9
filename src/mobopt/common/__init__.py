"""Shared floor of every stage: atomic writes, provenance of results, checksummed downloads. TF-free."""
