"""Benchmarks: ratios measured within one run, JSON out.

Timing lives here, never in pass/fail tests.
"""
