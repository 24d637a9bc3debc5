"""Targets: the host, boards, builds, flashing and serial links."""
