"""Benchmarks (TF-free): the protocol, one measurement, devices, phones, op profile, cross-check, CPU peak, statistics."""
