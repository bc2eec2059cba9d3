"""Preloop's framework-free core: policies, decisions, approvals, audit and the ports
that the edges (server, bots, tui) plug into."""

__version__ = "0.1.0"
