"""The model gateway's core: providers and routing, secret custody, runtime tokens, pricing,
the usage ledger and budgets. Framework-free like the rest of ``hub``; the HTTP edge that
speaks the OpenAI and Anthropic wire formats lives in ``server/model_gateway``.

``hub.model_gateway.records`` holds the records and ``hub.model_gateway.ports`` the storage
ports and the in-process model port every part codes against."""
