"""Preloop server: the composition root and every edge that serves (HTTP API, database, CLI)."""
