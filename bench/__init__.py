"""Benchmarks of fer_perception (``make bench``): speed, latency, accuracy and stability."""
