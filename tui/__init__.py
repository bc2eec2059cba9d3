"""The Textual on-call dashboard: a pure client of the server's REST and WebSocket API.

Not built yet: the on-call dashboard issue adds it. Importing this package has no effect.
"""
