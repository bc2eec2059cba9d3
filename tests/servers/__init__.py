"""Real servers the integration tests run as subprocesses (MCP upstreams and the like)."""
