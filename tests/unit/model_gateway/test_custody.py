"""Custody: references, local_encrypted sealing (AAD, wrong keys, tampering), rotation, env."""

from __future__ import annotations

import base64

import msgspec
import pytest

from hub.errors import ConfigError, NotFoundError, ValidationError
from hub.model_gateway.custody import Custody, parse_ref
from server.custody.local import Keyring, LocalEncryptedBackend, key_file_keyring, new_key_entry

from .support import stack

VALUE = "sk-live-0123456789abcdefSECRET"


@pytest.mark.parametrize(
    ("text", "backend", "name"),
    [
        ("local:openai", "local", "openai"),
        ("vault:preloop/openai#api_key", "vault", "preloop/openai#api_key"),
        ("env:OPENAI_API_KEY", "env", "OPENAI_API_KEY"),
    ],
)
def test_references_parse(text: str, backend: str, name: str) -> None:
    ref = parse_ref(text)
    assert (backend, name, text) == (ref.backend, ref.name, str(ref))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("openai", "local:NAME, vault:PATH#FIELD or env:VAR"),
        ("s3:bucket", "local:NAME, vault:PATH#FIELD or env:VAR"),
        ("vault:preloop/openai", "vault:PATH#FIELD"),
        ("local:has space", "local:NAME"),
        ("env:1BAD", "env:VAR"),
    ],
)
def test_bad_references_name_the_form_expected(text: str, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        parse_ref(text)


async def test_local_secret_round_trips_sealed_and_audited_without_its_value() -> None:
    s = await stack()
    info = await s.custody.put(s.account_id, "local:openai", VALUE, actor="admin")
    assert ("openai", "local", "k1") == (info.name, info.backend, info.key_id)
    assert VALUE == await s.custody.resolve(s.account_id, "local:openai")

    stored = await s.storage.secrets.get(s.account_id, "openai")
    assert stored is not None
    assert VALUE not in stored.ciphertext
    assert VALUE.encode() not in base64.b64decode(stored.ciphertext)
    assert ["secret.stored"] == await s.kinds()
    assert VALUE not in await s.audit_text()
    assert "local:openai" in await s.audit_text()


async def test_a_ciphertext_moved_to_another_secret_does_not_open() -> None:
    s = await stack()
    await s.custody.put(s.account_id, "local:a", VALUE, actor="admin")
    stored = await s.storage.secrets.get(s.account_id, "a")
    assert stored is not None
    await s.storage.secrets.put(msgspec.structs.replace(stored, name="b"))
    with pytest.raises(ConfigError, match="secret local:b cannot be opened") as caught:
        await s.custody.resolve(s.account_id, "local:b")
    assert VALUE not in str(caught.value)


async def test_tampered_ciphertext_and_missing_key_are_clear_errors() -> None:
    s = await stack()
    await s.custody.put(s.account_id, "local:openai", VALUE, actor="admin")
    stored = await s.storage.secrets.get(s.account_id, "openai")
    assert stored is not None
    raw = bytearray(base64.b64decode(stored.ciphertext))
    raw[-1] ^= 1
    await s.storage.secrets.put(
        msgspec.structs.replace(stored, ciphertext=base64.b64encode(bytes(raw)).decode())
    )
    with pytest.raises(ConfigError, match="key is wrong or the stored ciphertext was altered"):
        await s.custody.resolve(s.account_id, "local:openai")
    await s.storage.secrets.put(msgspec.structs.replace(stored, key_id="gone"))
    with pytest.raises(ConfigError, match="sealed with key 'gone', which is not in"):
        await s.custody.resolve(s.account_id, "local:openai")


async def test_missing_secret_names_the_reference() -> None:
    s = await stack()
    with pytest.raises(NotFoundError, match="secret local:nope does not exist"):
        await s.custody.resolve(s.account_id, "local:nope")
    with pytest.raises(ConfigError, match="PRELOOP_SECRETS_VAULT_ADDR"):
        await s.custody.resolve(s.account_id, "vault:a/b#c")


async def test_rotation_reseals_under_the_new_key_and_old_values_still_open() -> None:
    old, new = new_key_entry("k1"), new_key_entry("k2")
    s = await stack(keys=old)
    await s.custody.put(s.account_id, "local:a", "value-a", actor="admin")
    await s.custody.put(s.account_id, "local:b", "value-b", actor="admin")

    def custody_with(keys: str) -> Custody:  # the same database, a server with other keys
        backend = LocalEncryptedBackend(s.storage.secrets, Keyring.parse(keys), s.clock)
        return Custody({"local": backend}, s.auditor)

    both = custody_with(f"{new},{old}")  # step 1: the new key first, the old one kept
    assert "value-a" == await both.resolve(s.account_id, "local:a")
    assert [True, True] == [await both.rotate(s.account_id, n, actor="admin") for n in "ab"]
    assert [False, False] == [await both.rotate(s.account_id, n, actor="admin") for n in "ab"]
    assert {"k2"} == {x.key_id for x in await s.storage.secrets.list(s.account_id)}

    only_new = custody_with(new)  # step 3: the old key dropped
    assert "value-b" == await only_new.resolve(s.account_id, "local:b")
    assert 2 == (await s.kinds()).count("secret.rotated")
    audit = await s.audit_text()
    assert "value-a" not in audit
    assert new.split(":")[1] not in audit


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k1", "entry 1 must be KEYID:BASE64"),
        ("k1:not-base64!", "key 'k1' is not valid base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "must be 32 bytes"),
        (
            f"k1:{base64.b64encode(bytes(32)).decode()},k1:{base64.b64encode(b'x' * 32).decode()}",
            "listed twice",
        ),
        ("", "holds no key"),
    ],
)
def test_bad_keys_setting_is_a_config_error_without_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Keyring.parse(text)
    secret_part = text.partition(":")[2].split(",")[0]
    assert not secret_part or secret_part not in str(caught.value)


def test_key_file_is_made_once_with_mode_0600(tmp_path: object) -> None:
    from pathlib import Path

    data = Path(str(tmp_path))
    first, note = key_file_keyring(data)
    again, second_note = key_file_keyring(data)
    assert note is not None
    assert "secrets-key" in note
    assert second_note is None
    assert first.key_ids == again.key_ids
    assert 0o600 == (data / "secrets-key").stat().st_mode & 0o777


async def test_env_references_need_the_allow_list_and_never_read_preloop_variables() -> None:
    environ = {"OPENAI_API_KEY": VALUE, "PRELOOP_ADMIN_KEY": "x" * 40, "HOME": "/root"}
    s = await stack(environ=environ, allow="*_API_KEY,PRELOOP_*")
    assert VALUE == await s.custody.resolve(s.account_id, "env:OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="PRELOOP_SECRETS_ENV_ALLOW"):
        await s.custody.resolve(s.account_id, "env:HOME")
    with pytest.raises(ConfigError, match="never readable"):
        await s.custody.resolve(s.account_id, "env:PRELOOP_ADMIN_KEY")
    names = [(i.backend, i.name) for i in await s.custody.list(s.account_id)]
    assert [("env", "OPENAI_API_KEY")] == names
    with pytest.raises(ValidationError, match="read-only"):
        await s.custody.put(s.account_id, "env:OPENAI_API_KEY", "x", actor="admin")


async def test_a_write_during_rotation_wins_over_the_rotation() -> None:
    old, new = new_key_entry("k1"), new_key_entry("k2")
    s = await stack(keys=old)
    await s.custody.put(s.account_id, "local:a", "before", actor="admin")
    backend = LocalEncryptedBackend(s.storage.secrets, Keyring.parse(f"{new},{old}"), s.clock)
    custody = Custody({"local": backend}, s.auditor)
    store_get = s.storage.secrets.get

    async def get_then_someone_writes(account_id: str, name: str) -> object:
        found = await store_get(account_id, name)
        await custody.put(account_id, "local:a", "written meanwhile", actor="other admin")
        return found

    s.storage.secrets.get = get_then_someone_writes  # type: ignore[method-assign, assignment]
    assert not await custody.rotate(s.account_id, "a", actor="admin")
    s.storage.secrets.get = store_get  # type: ignore[method-assign]
    assert "written meanwhile" == await custody.resolve(s.account_id, "local:a")
