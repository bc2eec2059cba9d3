"""A custody, provider and runtime stack over in-memory storage, for the gateway's unit tests."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.identity import IdentityService
from hub.memory import InMemoryStorage
from hub.model_gateway.custody import ENV, LOCAL, Custody, EnvBackend, SecretBackend
from hub.model_gateway.providers import ProviderService
from hub.model_gateway.runtime import RuntimeService
from server.custody.local import Keyring, LocalEncryptedBackend, new_key_entry


class Stack(msgspec.Struct, kw_only=True):
    storage: InMemoryStorage
    clock: FrozenClock
    auditor: Auditor
    identity: IdentityService
    custody: Custody
    keyring: Keyring
    providers: ProviderService
    runtime: RuntimeService
    account_id: str

    async def audit_text(self) -> str:
        events = await self.storage.audit.all(self.account_id)
        return msgspec.json.encode([e.data for e in events]).decode()

    async def kinds(self) -> list[str]:
        return [e.kind for e in await self.storage.audit.all(self.account_id)]


async def stack(
    *, keys: str | None = None, environ: Mapping[str, str] | None = None, allow: str = ""
) -> Stack:
    storage, clock = InMemoryStorage(), FrozenClock()
    auditor = Auditor(storage.audit, clock)
    identity = IdentityService(storage, clock, auditor, cache_seconds=60)
    account = await identity.default_account()
    keyring = Keyring.parse(keys or new_key_entry("k1"))
    backends: dict[str, SecretBackend] = {
        LOCAL: LocalEncryptedBackend(storage.secrets, keyring, clock),
        ENV: EnvBackend(environ or {}, tuple(a for a in allow.split(",") if a)),
    }
    custody = Custody(backends, auditor, unconfigured={"vault": "set PRELOOP_SECRETS_VAULT_ADDR"})
    providers = ProviderService(storage, clock, auditor, custody, cache_seconds=60, key_seconds=60)
    custody.on_change(providers.forget_keys)
    runtime = RuntimeService(storage, clock, auditor, identity, max_ttl_seconds=7200)
    return Stack(
        storage=storage,
        clock=clock,
        auditor=auditor,
        identity=identity,
        custody=custody,
        keyring=keyring,
        providers=providers,
        runtime=runtime,
        account_id=account.id,
    )
