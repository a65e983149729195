"""Benchmarks: ratios measured within one run on one machine, JSON out.

Timing lives here, never in pass/fail tests.
"""
