"""Settings: one strict tree read from ``PRELOOP_*`` environment variables and an optional
``.env`` file. Nothing is read at import time; call ``load_settings()``.

Each field's variable is ``PRELOOP_`` + section + ``_`` + field, upper-cased (top-level fields
have no section): ``server.port`` → ``PRELOOP_SERVER_PORT``, ``database.url`` →
``PRELOOP_DATABASE_URL``, ``admin_key`` → ``PRELOOP_ADMIN_KEY``. Real environment variables
win over the ``.env`` file.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import msgspec

from hub.errors import ConfigError

SECRET = "secret"  # noqa: S105 - the marker in a field's Meta.extra, not a password


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: Annotated[str, msgspec.Meta(description="Address the server listens on.")] = "127.0.0.1"
    port: Annotated[
        int, msgspec.Meta(ge=0, le=65535, description="Port the server listens on.")
    ] = 8000
    public_url: Annotated[
        str,
        msgspec.Meta(
            description="URL people and agents use to reach the server "
            "(default: built from host and port)."
        ),
    ] = ""
    max_body_bytes: Annotated[
        int, msgspec.Meta(ge=1024, description="Largest request body accepted, in bytes.")
    ] = 1_048_576
    cache_seconds: Annotated[
        float,
        msgspec.Meta(
            ge=0,
            description="How long API keys, the active policy and tool pins read from the "
            "database are reused on the tool-call path. Changes made through this server "
            "apply at once; changes made through another replica within this time. 0: read "
            "on every call.",
        ),
    ] = 2.0
    scheduler_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            le=3600,
            description="How often the scheduler looks for approval requests to expire or "
            "escalate, in seconds. Safe with several replicas: only one fires each event.",
        ),
    ] = 1.0
    tracker_sync_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            le=3600,
            description="How often the server looks for trackers whose background poll is "
            "due (each tracker's own poll interval decides when it is) and for webhook "
            "deliveries left to process, in seconds. Safe with several replicas: one polls "
            "each tracker, one processes each delivery.",
        ),
    ] = 5.0
    lease_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            le=3600,
            description="How long after a server process stops renewing its lease (its "
            "scheduler renews it) the calls it held for synchronous approval count as cut "
            "off: any replica, or the restarted server, then cancels their requests.",
        ),
    ] = 30.0
    ws_heartbeat_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            le=3600,
            description="How often the unified WebSocket (/api/v1/ws/unified) sends each "
            "client a heartbeat message, in seconds.",
        ),
    ] = 30.0
    ws_activity_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            le=3600,
            description="How often the unified WebSocket reads new audit events for its "
            "`activity` subscribers, in seconds (from the database: every replica's events).",
        ),
    ] = 1.0


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[
        str,
        msgspec.Meta(
            description="SQLAlchemy URL. Empty: a SQLite file `preloop.db` in the data "
            "directory. PostgreSQL: `postgresql://user:pass@host/db`.",
            extra={SECRET: True},
        ),
    ] = ""
    migrate_on_start: Annotated[
        bool, msgspec.Meta(description="Apply database migrations when the server starts.")
    ] = True


class PolicySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    file: Annotated[
        str,
        msgspec.Meta(
            description="Policy file applied when the server starts (GitOps, containers). "
            "Empty: keep the stored policy; on a new database the bundled example is applied."
        ),
    ] = ""
    cel_engine: Annotated[
        str,
        msgspec.Meta(
            pattern="^(auto|cel-python|cel-rust)$",
            description="CEL engine for policy conditions: auto (cel-rust, installed by "
            "default, else cel-python with a warning), cel-rust (forced: start-up fails "
            "without it) or cel-python (the pure-Python reference engine, about 50 times "
            "slower; the same answers).",
        ),
    ] = "auto"


class McpSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    env_allow: Annotated[
        str,
        msgspec.Meta(
            description="Comma-separated environment variable names that MCP server "
            "definitions may reference as `${NAME}` (secrets stay out of the policy). "
            "Empty: no references are resolved."
        ),
    ] = ""
    approval_heartbeat_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            le=3600,
            description="How often an agent held for a synchronous approval gets a progress "
            "notification, in seconds (keeps its connection alive; a decision wakes it at "
            "once, not at the next heartbeat).",
        ),
    ] = 10.0

    @property
    def env_allow_names(self) -> frozenset[str]:
        return frozenset(n.strip() for n in self.env_allow.split(",") if n.strip())


class SmtpSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: Annotated[
        str,
        msgspec.Meta(description="SMTP server for approval mail. Empty: the email channel is off."),
    ] = ""
    port: Annotated[int, msgspec.Meta(ge=0, le=65535, description="SMTP port.")] = 587
    security: Annotated[
        str,
        msgspec.Meta(
            pattern="^(starttls|tls|none)$",
            description="starttls (upgrade after connecting, port 587), tls (TLS from the "
            "start, port 465) or none (plain, only for a local relay).",
        ),
    ] = "starttls"
    username: Annotated[str, msgspec.Meta(description="SMTP login (empty: no login).")] = ""
    password: Annotated[str, msgspec.Meta(description="SMTP password.", extra={SECRET: True})] = ""
    sender: Annotated[str, msgspec.Meta(description="The From address of approval mail.")] = (
        "preloop@localhost"
    )
    timeout_seconds: Annotated[
        float, msgspec.Meta(gt=0, description="SMTP connect and send timeout.")
    ] = 30.0


class NotificationSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    attempts: Annotated[
        int,
        msgspec.Meta(
            ge=1, le=20, description="Attempts per channel delivery before giving up (audited)."
        ),
    ] = 4
    retry_seconds: Annotated[
        float,
        msgspec.Meta(ge=0, description="Wait before the first retry; each next wait doubles."),
    ] = 1.0
    link_secret: Annotated[
        str,
        msgspec.Meta(
            description="Secret that signs email approve/deny links (at least 32 characters). "
            "Empty: one is generated and kept in the data directory (`link-secret`); "
            "replicas must share it.",
            extra={SECRET: True},
        ),
    ] = ""
    link_seconds: Annotated[
        int,
        msgspec.Meta(
            gt=0,
            description="Longest life of an email approve/deny link; a link never outlives "
            "its request.",
        ),
    ] = 86400
    deliver: Annotated[
        str,
        msgspec.Meta(
            pattern="^(server|worker)$",
            description="Who delivers approval notices and updates them once decided: "
            "`server` (each `preloop serve` process) or `worker` (only the `preloop bots` "
            "worker; servers still accept the channels' callbacks). `worker` needs "
            "PostgreSQL, whose events reach the worker.",
        ),
    ] = "server"


class PushSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    proxy_url: Annotated[
        str,
        msgspec.Meta(
            description="URL of the push proxy that sends approval requests to paired phones "
            "(also read from `PUSH_PROXY_URL`). Empty: no push channel."
        ),
    ] = ""
    proxy_api_key: Annotated[
        str,
        msgspec.Meta(
            description="API key sent to the push proxy in the `X-API-Key` header (also read "
            "from `PUSH_PROXY_API_KEY`).",
            extra={SECRET: True},
        ),
    ] = ""


class MattermostSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[
        str,
        msgspec.Meta(
            description="Mattermost server URL, e.g. `https://chat.example.com`. Empty (or no "
            "token): the mattermost channel is off."
        ),
    ] = ""
    token: Annotated[
        str,
        msgspec.Meta(
            description="Access token of the Mattermost bot account that posts approval requests.",
            extra={SECRET: True},
        ),
    ] = ""
    channel_id: Annotated[
        str,
        msgspec.Meta(
            description="Id of the Mattermost channel to post in when the workflow names none "
            "(`channel_settings: {mattermost: {channel: <id>}}`)."
        ),
    ] = ""


class SlackSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    bot_token: Annotated[
        str,
        msgspec.Meta(
            description="Slack bot token (`xoxb-...`). Empty: the Slack channel is off.",
            extra={SECRET: True},
        ),
    ] = ""
    signing_secret: Annotated[
        str,
        msgspec.Meta(
            description="Slack app signing secret: button clicks, modals and `/preloop` at "
            "`/slack/events` are accepted only when signed with it.",
            extra={SECRET: True},
        ),
    ] = ""
    app_token: Annotated[
        str,
        msgspec.Meta(
            description="Slack app-level token (`xapp-...`, scope `connections:write`) for "
            "Socket Mode: the `preloop bots` worker receives clicks, modals and `/preloop` "
            "over a WebSocket it opens, so Slack needs no public URL. Empty: Socket Mode off.",
            extra={SECRET: True},
        ),
    ] = ""
    channel: Annotated[
        str,
        msgspec.Meta(
            description="Slack channel for approval messages when the workflow names none "
            "(`channel_settings.slack.channel`)."
        ),
    ] = ""
    api_url: Annotated[
        str,
        msgspec.Meta(
            description="Base URL of the Slack Web API (tests, Slack Enterprise proxies); "
            "ends with `/`."
        ),
    ] = "https://slack.com/api/"


class GatewaySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The model gateway's HTTP edge (``/openai/v1``, ``/anthropic/v1``)."""

    max_body_bytes: Annotated[
        int,
        msgspec.Meta(
            ge=1024,
            description="Largest model request body the gateway accepts, in bytes (prompts "
            "with images are large); larger ones get 413 in the provider's error envelope.",
        ),
    ] = 33_554_432
    connect_timeout_seconds: Annotated[
        float,
        msgspec.Meta(gt=0, description="Timeout for connecting to a model provider."),
    ] = 10.0
    read_timeout_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            description="Longest wait for the provider's next bytes (the answer's start, or the "
            "next piece of a stream), in seconds.",
        ),
    ] = 600.0
    max_connections: Annotated[
        int,
        msgspec.Meta(ge=1, description="Pooled connections to the providers, in all (kept alive)."),
    ] = 200


class SecretsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Secret custody (the model gateway's provider keys) and runtime tokens."""

    keys: Annotated[
        str,
        msgspec.Meta(
            description="`local_encrypted` keys: comma-separated `KEYID:BASE64` (32 random "
            "bytes each, e.g. `openssl rand -base64 32`). The first seals new secrets; the "
            "others still open old ones (rotation). Empty on SQLite: a key is generated into "
            "the data directory (`secrets-key`); empty on PostgreSQL: `local:` secrets are off.",
            extra={SECRET: True},
        ),
    ] = ""
    vault_addr: Annotated[
        str,
        msgspec.Meta(
            description="Vault/OpenBao address for `vault:PATH#FIELD` references, e.g. "
            "`https://vault.example.com:8200`. Empty: the vault backend is off."
        ),
    ] = ""
    vault_token: Annotated[
        str,
        msgspec.Meta(description="Vault token (`X-Vault-Token`).", extra={SECRET: True}),
    ] = ""
    vault_mount: Annotated[
        str, msgspec.Meta(description="Mount path of the KV version 2 secrets engine.")
    ] = "secret"
    vault_namespace: Annotated[
        str,
        msgspec.Meta(description="Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`)."),
    ] = ""
    vault_timeout_seconds: Annotated[
        float, msgspec.Meta(gt=0, le=300, description="Timeout of each request to Vault.")
    ] = 10.0
    env_allow: Annotated[
        str,
        msgspec.Meta(
            description="Comma-separated environment variable names (globs allowed, e.g. "
            "`*_API_KEY`) that `env:VAR` references may read. Empty: none. `PRELOOP_*` "
            "variables are never readable."
        ),
    ] = ""
    cache_seconds: Annotated[
        float,
        msgspec.Meta(
            ge=0,
            le=3600,
            description="How long a provider key read from custody is reused by the gateway "
            "(dropped at once when the provider or the secret changes through this server).",
        ),
    ] = 30.0
    runtime_token_max_seconds: Annotated[
        int,
        msgspec.Meta(
            gt=0,
            description="Longest life of a flow execution's runtime token (`plrt_...`); "
            "the default life is one hour.",
        ),
    ] = 86400

    @property
    def env_allow_names(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in self.env_allow.split(",") if n.strip())


class BudgetSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The model gateway's pricing, budgets and usage ledger (section ``budgets``)."""

    default_max_output_tokens: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            description="Output tokens a budget reserves for a request that sets no "
            "`max_tokens` / `max_output_tokens` (the reservation is settled to the actual "
            "cost afterwards).",
        ),
    ] = 4096
    unpriced_input: Annotated[
        Decimal,
        msgspec.Meta(
            description="US dollars per million input tokens charged for a model with no "
            "price (built-in or `preloop prices set`), so budgets still count it. 0: unpriced "
            "models are free.",
        ),
    ] = Decimal("15")
    unpriced_output: Annotated[
        Decimal,
        msgspec.Meta(
            description="US dollars per million output tokens charged for a model with no price.",
        ),
    ] = Decimal("75")
    reservation_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            description="How long a budget reservation holds when its request is never "
            "settled (a crashed process): after this it no longer counts.",
        ),
    ] = 900.0
    ledger_batch: Annotated[
        int,
        msgspec.Meta(
            ge=1, le=10000, description="Most usage records the ledger writes in one commit."
        ),
    ] = 500
    ledger_retry_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            le=3600,
            description="First delay before the ledger retries a failed write (doubling, up "
            "to a minute); records are kept in memory meanwhile and logged.",
        ),
    ] = 1.0


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Password logins (``POST /api/v1/auth/token``) and the access tokens they issue."""

    token_seconds: Annotated[
        int,
        msgspec.Meta(
            ge=60,
            le=86400,
            description="How long an access token from a password login (`plat_...`) works, "
            "in seconds.",
        ),
    ] = 3600
    scrypt_log_n: Annotated[
        int,
        msgspec.Meta(
            ge=10,
            le=20,
            description="scrypt cost of new password hashes, as log2 of N (17: 128 MiB and "
            "about 0.4 s of one core per hash). Older hashes keep working and are stored "
            "again at this cost on their next login.",
        ),
    ] = 17
    login_attempts: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=1000,
            description="Failed logins one username may have within `PRELOOP_AUTH_"
            "LOCKOUT_SECONDS` before further logins for it are refused (429).",
        ),
    ] = 5
    address_attempts: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=100000,
            description="Failed logins one client address may have within `PRELOOP_AUTH_"
            "LOCKOUT_SECONDS` before further logins from it are refused (429).",
        ),
    ] = 20
    lockout_seconds: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=86400,
            description="The window failed logins are counted in, per server process: a "
            "username or address that reached its limit may try again once its oldest "
            "counted failure is this old.",
        ),
    ] = 300


class SearchSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Search over synced issues: the embedder, the background indexer, duplicate detection
    and compliance scoring (docs/search.md)."""

    embedder: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^(local:[A-Za-z0-9._\-]+|gateway:[^\s@]+)(@[1-9][0-9]{0,4})?$",
            description="What turns issue text into vectors: `local:hashing-v1` (offline, "
            "lexical, the default), `local:minilm` (the `local-embeddings` extra), or "
            "`gateway:MODEL[@DIMS]` (an embeddings model the model gateway routes). A change "
            "re-embeds every issue in the background.",
        ),
    ] = "local:hashing-v1"
    index_seconds: Annotated[
        float,
        msgspec.Meta(
            ge=0.1,
            le=3600,
            description="How often the background indexer looks for issues to embed (new or "
            "changed since they were embedded).",
        ),
    ] = 5.0
    index_batch: Annotated[
        int,
        msgspec.Meta(ge=1, le=2048, description="Issues embedded per embedder call."),
    ] = 64
    duplicate_threshold: Annotated[
        float,
        msgspec.Meta(
            ge=0,
            le=1,
            description="Cosine at or above which two issues are duplicate candidates (0: the "
            "embedder's own measured threshold; a threshold belongs to one embedder).",
        ),
    ] = 0.0
    duplicate_model: Annotated[
        str,
        msgspec.Meta(
            description="A chat model, routed by the model gateway, that confirms duplicate "
            "candidates (DUPLICATE / OVERLAPPING / UNRELATED); empty: similarity only."
        ),
    ] = ""
    compliance_model: Annotated[
        str,
        msgspec.Meta(
            description="A chat model, routed by the model gateway, that scores issue "
            "compliance (DoR, INVEST, Risk); empty: the rule-based scorer."
        ),
    ] = ""
    compliance_catalogue: Annotated[
        str,
        msgspec.Meta(
            description="A YAML file of compliance metrics (DoR, INVEST, Risk: prompts and "
            "rules) to use instead of the packaged one; checked when the server starts."
        ),
    ] = ""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    data_dir: Annotated[
        str,
        msgspec.Meta(
            description="Directory for the SQLite database and the first admin key. "
            "Default: `$XDG_DATA_HOME/preloop` or `~/.local/share/preloop`."
        ),
    ] = ""
    admin_key: Annotated[
        str,
        msgspec.Meta(
            description="Bootstrap admin key accepted by the server (automation, containers). "
            "At least 32 characters.",
            extra={SECRET: True},
        ),
    ] = ""
    log_level: Annotated[
        str, msgspec.Meta(pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="Log level.")
    ] = "INFO"
    url: Annotated[
        str,
        msgspec.Meta(description="Server URL the CLI talks to (else the saved login profile)."),
    ] = ""
    api_key: Annotated[
        str,
        msgspec.Meta(
            description="API key the CLI sends (else the saved login profile).",
            extra={SECRET: True},
        ),
    ] = ""
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    policy: PolicySettings = PolicySettings()
    mcp: McpSettings = McpSettings()
    smtp: SmtpSettings = SmtpSettings()
    notifications: NotificationSettings = NotificationSettings()
    push: PushSettings = PushSettings()
    mattermost: MattermostSettings = MattermostSettings()
    slack: SlackSettings = SlackSettings()
    gateway: GatewaySettings = GatewaySettings()
    secrets: SecretsSettings = SecretsSettings()  # gateway: custody
    budgets: BudgetSettings = BudgetSettings()
    auth: AuthSettings = AuthSettings()  # password logins and their access tokens
    search: SearchSettings = SearchSettings()  # issue search, duplicates, compliance

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir or default_data_dir(os.environ)).expanduser()

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.data_path / 'preloop.db'}"

    @property
    def public_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        host = self.server.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
            host = "127.0.0.1"
        return f"http://{host}:{self.server.port}"


class SettingField(msgspec.Struct, frozen=True, kw_only=True):
    """One setting, as documented and as shown by ``preloop config show``."""

    path: str  # e.g. "server.port"
    env: str  # e.g. "PRELOOP_SERVER_PORT"
    type: str
    default: Any
    description: str
    secret: bool


def _fields(cls: type[msgspec.Struct], section: str) -> Iterator[SettingField]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        ftype = field.type
        if isinstance(ftype, msgspec.inspect.StructType):
            yield from _fields(ftype.cls, field.name)
            continue
        extra: dict[str, Any] = {}
        description = ""
        if isinstance(ftype, msgspec.inspect.Metadata):
            extra = ftype.extra or {}
            description = (
                ftype.extra_json_schema.get("description", "") if (ftype.extra_json_schema) else ""
            )
            ftype = ftype.type
        name = f"{section}.{field.name}" if section else field.name
        env = "PRELOOP_" + name.replace(".", "_").upper()
        yield SettingField(
            path=name,
            env=env,
            type=type(ftype).__name__.removesuffix("Type").lower(),
            default=field.default,
            description=description,
            secret=bool(extra.get(SECRET)),
        )


def setting_fields() -> list[SettingField]:
    """Every setting, in declaration order."""
    return list(_fields(Settings, ""))


def parse_env_file(path: Path) -> dict[str, str]:
    """A small, strict ``.env`` reader: ``KEY=VALUE`` lines, ``#`` comments, optional quotes
    and ``export`` prefix."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def load_settings(
    environ: Mapping[str, str] | None = None, *, env_file: Path | None = None, **overrides: Any
) -> Settings:
    """Build settings from the environment (default ``os.environ``) and ``env_file``
    (default ``./.env`` when it exists). ``overrides`` use dotted paths with ``__``:
    ``server__port=9000``. Unknown ``PRELOOP_*`` variables are errors naming the variable."""
    env = dict(os.environ if environ is None else environ)
    file = env_file if env_file is not None else Path(env.get("PRELOOP_ENV_FILE", ".env"))
    merged: dict[str, str] = {}
    if file.is_file():
        merged.update(parse_env_file(file))
    merged.update(env)
    for alias, name in _ALIASES.items():
        if alias in merged and name not in merged:
            merged[name] = merged[alias]

    fields = {f.env: f for f in setting_fields()}
    tree: dict[str, Any] = {}
    for key, value in merged.items():
        if not key.startswith("PRELOOP_") or key in _NOT_SETTINGS:
            continue
        field = fields.get(key)
        if field is None:
            raise ConfigError(_unknown_setting(key, fields))
        _put(tree, field.path, value)
    for dotted, value in overrides.items():
        if value is not None:
            _put(tree, dotted.replace("__", "."), value)
    try:
        settings = msgspec.convert(tree, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid setting: {_env_path(str(exc))}") from exc
    if not settings.data_dir:
        settings = msgspec.structs.replace(settings, data_dir=default_data_dir(env))
    return settings


def _unknown_setting(key: str, known: Iterable[str]) -> str:
    """``unknown setting X``, suggesting the closest known names: a near spelling (compared
    without the shared ``PRELOOP_`` prefix, which would make every name look close), or the
    same name under a section (``PRELOOP_LINK_SECRET``: ``PRELOOP_NOTIFICATIONS_LINK_SECRET``)."""
    names = {name.removeprefix("PRELOOP_"): name for name in known}
    short = key.removeprefix("PRELOOP_")
    close = difflib.get_close_matches(short, names, n=3, cutoff=0.75)
    close += [name for name in names if name.endswith("_" + short) and name not in close]
    if close:
        return f"unknown setting {key}; did you mean {' or '.join(names[c] for c in close[:3])}?"
    return f"unknown setting {key}; docs/configuration.md lists every setting"


def default_data_dir(environ: Mapping[str, str]) -> str:
    """``$XDG_DATA_HOME/preloop``, else ``~/.local/share/preloop``."""
    home = environ.get("HOME") or str(Path.home())
    base = environ.get("XDG_DATA_HOME") or str(Path(home) / ".local" / "share")
    return str(Path(base) / "preloop")


# Variables with the prefix that are not settings of the server or CLI.
_NOT_SETTINGS = frozenset(
    {"PRELOOP_ENV_FILE", "PRELOOP_TEST_DATABASE_URL", "PRELOOP_PROFILE", "PRELOOP_VERSION"}
)


# Names the push proxy's own documentation uses, accepted when the PRELOOP_ one is not set.
_ALIASES = {
    "PUSH_PROXY_URL": "PRELOOP_PUSH_PROXY_URL",
    "PUSH_PROXY_API_KEY": "PRELOOP_PUSH_PROXY_API_KEY",
}


def _put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _env_path(message: str) -> str:
    """Rewrite msgspec's ``$.server.port`` into the variable's name."""
    if "`$." in message:
        start = message.index("`$.") + 3
        end = message.index("`", start)
        env = "PRELOOP_" + message[start:end].replace(".", "_").upper()
        return message[: start - 3] + env + message[end + 1 :]
    return message


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective settings as a flat mapping of env names, secrets replaced."""
    values = msgspec.to_builtins(settings)
    shown: dict[str, Any] = {}
    for field in setting_fields():
        value: Any = values
        for part in field.path.split("."):
            value = value[part]
        if field.secret and value:
            value = "********"
        shown[field.env] = value
    return shown
