"""Facial action units (AUs) and eye closure, estimated per tracked face."""
