from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.settings import load_settings, parse_env_file, redacted, setting_fields


def test_defaults_give_the_embedded_setup(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path)}, env_file=tmp_path / "missing.env")
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8000
    assert settings.data_path == tmp_path / ".local" / "share" / "preloop"
    assert settings.database_url == (
        f"sqlite+aiosqlite:///{tmp_path / '.local' / 'share' / 'preloop' / 'preloop.db'}"
    )
    assert settings.public_url == "http://127.0.0.1:8000"


def test_environment_overrides_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nexport PRELOOP_SERVER_PORT=9001\nPRELOOP_DATA_DIR='/srv/preloop'\n"
        'PRELOOP_DATABASE_URL="postgresql://u:p@db/preloop"\n'
    )
    settings = load_settings({"PRELOOP_SERVER_PORT": "9002"}, env_file=env_file)
    assert settings.server.port == 9002
    assert settings.data_dir == "/srv/preloop"
    assert settings.database_url == "postgresql://u:p@db/preloop"


def test_nothing_is_read_at_import_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRELOOP_SERVER_PORT", "7777")
    assert load_settings(env_file=tmp_path / "none").server.port == 7777
    monkeypatch.setenv("PRELOOP_SERVER_PORT", "7778")
    assert load_settings(env_file=tmp_path / "none").server.port == 7778


def test_bad_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PRELOOP_SERVER_PORT"):
        load_settings({"PRELOOP_SERVER_PORT": "eighty"}, env_file=tmp_path / "none")
    with pytest.raises(ConfigError, match="PRELOOP_SERVER_PORT"):
        load_settings({"PRELOOP_SERVER_PORT": "70000"}, env_file=tmp_path / "none")


def test_unknown_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting PRELOOP_SERVR_PORT"):
        load_settings({"PRELOOP_SERVR_PORT": "1"}, env_file=tmp_path / "none")


@pytest.mark.parametrize(
    ("mistyped", "suggested"),
    [
        ("PRELOOP_DATABSE_URL", "PRELOOP_DATABASE_URL"),
        ("PRELOOP_SECRET_KEYS", "PRELOOP_SECRETS_KEYS"),
        ("PRELOOP_SMTP_PASS", "PRELOOP_SMTP_PASSWORD"),
        ("PRELOOP_LINK_SECRET", "PRELOOP_NOTIFICATIONS_LINK_SECRET"),  # the section left out
    ],
)
def test_a_mistyped_variable_gets_the_close_name_not_every_name(
    tmp_path: Path, mistyped: str, suggested: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({mistyped: "x"}, env_file=tmp_path / "none")
    assert f"unknown setting {mistyped}; did you mean {suggested}?" == caught.value.message
    assert len(caught.value.message) < 120, "one short line, not the list of every setting"


def test_an_unknown_variable_like_no_setting_points_to_the_docs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"PRELOOP_FROBNICATE": "1"}, env_file=tmp_path / "none")
    expected = "unknown setting PRELOOP_FROBNICATE; docs/configuration.md lists every setting"
    assert expected == caught.value.message


def test_malformed_env_file_line_names_file_and_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PRELOOP_SERVER_PORT=1\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=r"\.env:2"):
        parse_env_file(env_file)


def test_overrides_from_cli_flags_win(tmp_path: Path) -> None:
    settings = load_settings(
        {"PRELOOP_SERVER_PORT": "1234"},
        env_file=tmp_path / "none",
        server__port=4321,
        server__host=None,
    )
    assert settings.server.port == 4321
    assert settings.server.host == "127.0.0.1"


def test_secrets_are_redacted(tmp_path: Path) -> None:
    settings = load_settings(
        {"PRELOOP_ADMIN_KEY": "x" * 40, "PRELOOP_DATABASE_URL": "postgresql://u:hunter2@h/d"},
        env_file=tmp_path / "none",
    )
    shown = redacted(settings)
    assert shown["PRELOOP_ADMIN_KEY"] == "********"
    assert shown["PRELOOP_DATABASE_URL"] == "********"
    assert "hunter2" not in repr(shown)
    assert shown["PRELOOP_SERVER_PORT"] == 8000


def test_configuration_doc_lists_every_setting() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "configuration.md").read_text()
    for field in setting_fields():
        assert f"`{field.env}`" in doc, f"docs/configuration.md misses {field.env}"
        assert field.description.split(".")[0] in doc, f"description of {field.env} is stale"


def test_push_proxy_settings_accept_the_push_proxy_names(tmp_path: Path) -> None:
    plain = load_settings(
        {"PUSH_PROXY_URL": "https://push.example/send", "PUSH_PROXY_API_KEY": "k1"},
        env_file=tmp_path / "none",
    )
    preferred = load_settings(
        {"PUSH_PROXY_URL": "https://old.example", "PRELOOP_PUSH_PROXY_URL": "https://new.example"},
        env_file=tmp_path / "none",
    )

    assert ("https://push.example/send", "k1") == (plain.push.proxy_url, plain.push.proxy_api_key)
    assert "https://new.example" == preferred.push.proxy_url
    assert "********" == redacted(plain)["PRELOOP_PUSH_PROXY_API_KEY"]
