"""Benchmarks: each prints our figure beside the raw baseline (see bench/README.md)."""
