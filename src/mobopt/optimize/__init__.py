"""Optimization: the variant registry, conversion, pruning, fusion checks, mixed precision, the graph-opt pipeline."""
