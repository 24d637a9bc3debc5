"""Validation: host reference vs generated code or device; data sets; accuracy, latency, memory."""
