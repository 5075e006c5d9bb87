"""Benchmark suite for lucent_ws: fan-out, latency, memory, churn, admin HTTP, heartbeat.

Run every scenario with ``python -m bench all`` (or ``make bench``), one with
``python -m bench SCENARIO``; ``python -m bench list`` names them.
"""
