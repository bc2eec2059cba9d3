"""The model gateway's HTTP edge: ``/openai/v1`` and ``/anthropic/v1``.

routes.py         the raw ASGI mounts, reading ``app.state.model_gateway``
proxy.py          ModelGatewayProxy: auth → route → admit → forward → meter → settle → record
inbound.py        the client's side: credential, bounded body
upstream.py       the provider's side: the pooled aiohttp session, URL and key, headers back
dialects.py       the three wire formats: the request head, usage, stream meters
errors.py         refusals in the provider's error envelope
translate.py      OpenAI chat ↔ Anthropic messages, for the in-process chat only
fake_provider.py  a local OpenAI/Anthropic stand-in (tests, ``preloop bench gateway``)
bench.py          ``preloop bench gateway``
"""
