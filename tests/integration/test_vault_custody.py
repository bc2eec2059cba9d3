"""``vault:PATH#FIELD`` custody against a local fake of Vault's KV v2 HTTP API (a real HTTP
server on 127.0.0.1): reads, writes with check-and-set, namespaces, and every failure named
clearly without the token or a value."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.errors import ConfigError, ConflictError, NotFoundError
from server.custody.vault import VaultBackend
from tests.integration.conftest import serve_asgi
from tests.integration.fakes.vault import TOKEN, FakeVault

VALUE = "sk-vault-0123456789abcdefVALUE"
ACCOUNT = "acct_x"


@pytest.fixture
def vault() -> Iterator[tuple[FakeVault, str]]:
    fake = FakeVault(mount="kv", namespace="team-a")
    with serve_asgi(fake, "the fake Vault", lifespan="off") as url:
        yield fake, url


def backend(url: str, *, token: str = TOKEN, namespace: str = "team-a") -> VaultBackend:
    return VaultBackend(url, token, mount="kv", namespace=namespace, timeout=30)


async def test_reads_a_field_of_the_latest_version(vault: tuple[FakeVault, str]) -> None:
    fake, url = vault
    fake.write("preloop/openai", {"api_key": "old"})
    fake.write("preloop/openai", {"api_key": VALUE, "org": "acme"})
    assert VALUE == await backend(url).get(ACCOUNT, "preloop/openai#api_key")
    method, path, headers = fake.requests[-1]
    assert ("GET", "/v1/kv/data/preloop/openai") == (method, path)
    assert (TOKEN, "team-a") == (headers["x-vault-token"], headers["x-vault-namespace"])


async def test_put_merges_the_field_with_check_and_set_and_delete_removes_it(
    vault: tuple[FakeVault, str],
) -> None:
    fake, url = vault
    fake.write("preloop/anthropic", {"org": "acme"})
    vault_backend = backend(url)
    await vault_backend.put(ACCOUNT, "preloop/anthropic#api_key", VALUE)
    assert VALUE == await vault_backend.get(ACCOUNT, "preloop/anthropic#api_key")
    assert "acme" == await vault_backend.get(ACCOUNT, "preloop/anthropic#org")

    await vault_backend.delete(ACCOUNT, "preloop/anthropic#api_key")
    with pytest.raises(NotFoundError, match="has no text field 'api_key'"):
        await vault_backend.get(ACCOUNT, "preloop/anthropic#api_key")
    await vault_backend.delete(ACCOUNT, "preloop/anthropic#org")  # the last field: deleted
    with pytest.raises(NotFoundError, match="vault:preloop/anthropic#org does not exist"):
        await vault_backend.get(ACCOUNT, "preloop/anthropic#org")
    await vault_backend.put(ACCOUNT, "preloop/anthropic#api_key", VALUE)  # after a delete
    assert VALUE == await vault_backend.get(ACCOUNT, "preloop/anthropic#api_key")
    await vault_backend.put(ACCOUNT, "new/path#k", "v")  # a path that never existed
    assert "v" == await vault_backend.get(ACCOUNT, "new/path#k")


async def test_a_concurrent_change_is_a_conflict_not_a_lost_update(
    vault: tuple[FakeVault, str],
) -> None:
    fake, url = vault
    fake.write("p", {"a": "1"})
    vault_backend = backend(url)
    original = vault_backend._read

    async def stale_read(path: str, name: str) -> tuple[dict[str, object] | None, int]:
        data, version = await original(path, name)
        fake.write("p", {"a": "2"})  # somebody else writes between our read and our write
        return data, version

    vault_backend._read = stale_read  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="changed in Vault meanwhile"):
        await vault_backend.put(ACCOUNT, "p#b", "x")


async def test_failures_name_the_reference_never_the_token(vault: tuple[FakeVault, str]) -> None:
    fake, url = vault
    fake.write("preloop/openai", {"api_key": VALUE})
    with pytest.raises(NotFoundError, match=r"vault:missing/path#api_key does not exist"):
        await backend(url).get(ACCOUNT, "missing/path#api_key")
    with pytest.raises(ConfigError, match="permission denied") as denied:
        await backend(url, token="hvs.wrong-token-000000").get(ACCOUNT, "preloop/openai#api_key")
    with pytest.raises(ConfigError, match="permission denied"):
        await backend(url, namespace="").get(ACCOUNT, "preloop/openai#api_key")
    fake.sealed = True
    with pytest.raises(ConfigError, match="sealed or unavailable") as sealed:
        await backend(url).get(ACCOUNT, "preloop/openai#api_key")
    for error in (denied.value, sealed.value):
        assert "vault:preloop/openai#api_key" in str(error)
        assert TOKEN not in str(error)
        assert "wrong-token" not in str(error)
        assert VALUE not in str(error)


async def test_an_unreachable_vault_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"cannot reach Vault at http://127\.0\.0\.1:9"):
        await backend("http://127.0.0.1:9").get(ACCOUNT, "a#b")


async def test_the_hub_resolves_vault_references_from_settings(
    vault: tuple[FakeVault, str], tmp_path: object
) -> None:
    from pathlib import Path

    from hub.memory import InMemoryStorage
    from server.bootstrap import open_hub
    from tests.integration.conftest import make_settings

    fake, url = vault
    fake.write("preloop/openai", {"api_key": VALUE})
    settings = make_settings(
        Path(str(tmp_path)),
        PRELOOP_SECRETS_VAULT_ADDR=url,
        PRELOOP_SECRETS_VAULT_TOKEN=TOKEN,
        PRELOOP_SECRETS_VAULT_MOUNT="kv",
        PRELOOP_SECRETS_VAULT_NAMESPACE="team-a",
    )
    hub = await open_hub(settings, storage=InMemoryStorage())
    try:
        account = await hub.identity.default_account()
        provider = await hub.model_router.add(
            account.id,
            name="openai",
            kind="openai",
            base_url="https://api.openai.com/v1",
            secret_ref="vault:preloop/openai#api_key",
            actor="test",
        )
        assert VALUE == await hub.model_router.provider_key(provider)
        reads = len(fake.requests)
        assert VALUE == await hub.model_router.provider_key(provider)  # cached
        assert reads == len(fake.requests)
    finally:
        await hub.close()
