"""Baseline servers measured in the same run as lucent_ws: a naive hub and bare aiohttp."""
