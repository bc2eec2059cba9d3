"""Secret custody backends that need third-party libraries: ``local_encrypted``
(``cryptography``) and Vault/OpenBao KV v2 (``httpx``). The port is
``hub.model_gateway.custody``."""
