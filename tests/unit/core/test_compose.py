"""``compose.yaml`` configures Preloop with real settings: every ``PRELOOP_*`` variable it sets
or reads exists, server and worker get the same channel, custody and link-secret settings, and
no secret has a default in the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import yaml

from hub.settings import Settings, load_settings, setting_fields

COMPOSE = Path(__file__).parents[3] / "compose.yaml"
FIELDS = {field.env: field for field in setting_fields()}
# ${NAME}, ${NAME:-default}, ${NAME:?message}
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::(?P<op>[-?])(?P<rest>[^}]*))?\}")
# What both processes need so that each can send, and check, what the other signed or stored.
SHARED_SECTIONS = ("smtp", "mattermost", "push", "slack")
SHARED_ALSO = (
    "PRELOOP_NOTIFICATIONS_LINK_SECRET",
    "PRELOOP_SECRETS_KEYS",
    "PRELOOP_DATABASE_URL",
    "PRELOOP_SERVER_PUBLIC_URL",
)
# Defaults that differ from the settings' own, on purpose.
CONTAINER_DEFAULTS = {
    "PRELOOP_SERVER_PUBLIC_URL",  # the published port on localhost
    "PRELOOP_POLICY_FILE",  # the bundled policy, mounted at /app/policies
}


def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return loaded


def environment(service: str) -> dict[str, str]:
    env: dict[str, str] = services()[service]["environment"]
    return {name: str(value) for name, value in env.items()}


def test_every_preloop_variable_set_or_read_is_a_setting() -> None:
    text = COMPOSE.read_text()
    read = {m["name"] for m in INTERPOLATION.finditer(text) if m["name"].startswith("PRELOOP_")}
    set_ = {name for service in services() for name in environment(service)}
    unknown = sorted(name for name in read | {n for n in set_ if n.startswith("PRELOOP_")})
    assert [] == [name for name in unknown if name not in FIELDS], (
        "compose.yaml names PRELOOP_* variables that are no setting: an operator's .env with "
        "them would be refused by `preloop` commands"
    )


def test_server_and_worker_get_the_same_channel_custody_and_link_settings() -> None:
    shared = {f.env for f in FIELDS.values() if f.path.split(".")[0] in SHARED_SECTIONS}
    shared |= set(SHARED_ALSO)
    server, worker = environment("server"), environment("bots")
    assert sorted(shared - set(server)) == [], "settings the server is not given"
    assert {name: server[name] for name in shared} == {name: worker[name] for name in shared}


def test_secrets_have_no_default_and_the_keys_that_must_be_set_are_required() -> None:
    server = environment("server")
    secret_names = sorted(name for name in server if name in FIELDS and FIELDS[name].secret)
    for name in secret_names:
        if name == "PRELOOP_DATABASE_URL":
            continue  # built from POSTGRES_PASSWORD
        match = INTERPOLATION.fullmatch(server[name])
        assert match is not None, f"{name} must come from the operator's environment"
        assert name == match["name"]
        assert match["op"] == "?" or match["rest"] == "", f"{name} has a default secret"
    required = {
        m["name"] for m in map(INTERPOLATION.fullmatch, server.values()) if m and m["op"] == "?"
    }
    assert {"PRELOOP_ADMIN_KEY", "PRELOOP_NOTIFICATIONS_LINK_SECRET"} == required


def test_defaults_in_the_file_are_the_settings_defaults() -> None:
    """An empty `${X:-}` would override a non-empty default (SMTP port 587) with nothing."""
    settings = Settings()
    defaults = msgspec.to_builtins(settings)
    for service in ("server", "bots"):
        for name, value in environment(service).items():
            match = INTERPOLATION.fullmatch(value)
            if not match or match["op"] != "-" or name in CONTAINER_DEFAULTS:
                continue
            expected: Any = defaults
            for part in FIELDS[name].path.split("."):
                expected = expected[part]
            assert str(expected) == match["rest"], f"{service}: {name}"


def test_the_worker_settings_load_as_the_worker_would_read_them() -> None:
    """The worker's environment with the operator's secrets given and the rest defaulted."""
    given = {
        "POSTGRES_PASSWORD": "pw",
        "PRELOOP_NOTIFICATIONS_LINK_SECRET": "l" * 40,
        "PRELOOP_SECRETS_KEYS": "k1:" + "A" * 43 + "=",
    }

    def resolve(value: str) -> str:
        def one(m: re.Match[str]) -> str:
            return given.get(m["name"], m["rest"] if m["op"] == "-" else "")

        return INTERPOLATION.sub(one, value)

    env = {name: resolve(value) for name, value in environment("bots").items()}
    settings = load_settings(env, env_file=COMPOSE.parent / "no-such.env")
    assert "l" * 40 == settings.notifications.link_secret
    assert 587 == settings.smtp.port
    assert "postgresql://preloop:pw@db:5432/preloop" == settings.database.url
