"""Password hashes: scrypt (stdlib ``hashlib.scrypt``) with a random salt, the cost in the hash.

A stored hash reads ``scrypt$ln=17,r=8,p=1$<salt>$<hash>`` (salt and hash in unpadded
URL-safe base64): ``ln`` is log2 of scrypt's CPU/memory cost N, ``r`` the block size, ``p``
the parallelism. Verification takes the parameters from the stored hash, so raising the cost
(``PRELOOP_AUTH_SCRYPT_LOG_N``) leaves older hashes working; ``needs_rehash`` tells a login to
store the password again at the current cost. The comparison is constant-time.

The default (N = 2^17, r = 8, p = 1: 128 MiB and about 0.4 s of one core per hash) is OWASP's
minimum for scrypt. Hashing is CPU-bound and blocks: callers run it off the event loop
(``asyncio.to_thread``), as ``hub.logins`` does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

import msgspec

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # longer is refused before hashing: a long input costs more
SCHEME = "scrypt"
DEFAULT_LOG_N = 17
MIN_LOG_N = 10  # tests; anything lower is refused when read back
MAX_LOG_N = 20
BLOCK_SIZE = 8
PARALLELISM = 1
SALT_BYTES = 16
HASH_BYTES = 32
_SHAPE = re.compile(
    r"^scrypt\$ln=(?P<ln>\d{1,2}),r=(?P<r>\d{1,2}),p=(?P<p>\d{1,2})\$(?P<salt>[A-Za-z0-9_-]+)"
    r"\$(?P<hash>[A-Za-z0-9_-]+)$"
)


class ScryptCost(msgspec.Struct, frozen=True, kw_only=True):
    """scrypt's parameters: N = 2**log_n, block size r, parallelism p."""

    log_n: int = DEFAULT_LOG_N
    r: int = BLOCK_SIZE
    p: int = PARALLELISM

    def __post_init__(self) -> None:
        if not MIN_LOG_N <= self.log_n <= MAX_LOG_N or not 1 <= self.r <= 32 or self.p != 1:
            raise ValueError(f"unsupported scrypt cost ln={self.log_n},r={self.r},p={self.p}")

    @property
    def max_memory(self) -> int:
        """What ``hashlib.scrypt`` needs (128 * r * N bytes) plus room for its bookkeeping."""
        need: int = 128 * self.r * (1 << self.log_n) * 2 + (1 << 20)
        return need


def hash_password(password: str, cost: ScryptCost | None = None) -> str:
    """A new salted hash of ``password`` (blocking: run it off the event loop)."""
    cost = cost or ScryptCost()
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, cost)
    return f"{SCHEME}$ln={cost.log_n},r={cost.r},p={cost.p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (blocking; constant-time
    comparison). A hash this module cannot read matches nothing."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    cost, salt, expected = parsed
    return hmac.compare_digest(_scrypt(password, salt, cost, len(expected)), expected)


def needs_rehash(stored: str, cost: ScryptCost) -> bool:
    """Whether ``stored`` was made at another cost than ``cost`` (or cannot be read)."""
    parsed = _parse(stored)
    return parsed is None or parsed[0] != cost


def _parse(stored: str) -> tuple[ScryptCost, bytes, bytes] | None:
    match = _SHAPE.match(stored)
    if match is None:
        return None
    try:
        cost = ScryptCost(log_n=int(match["ln"]), r=int(match["r"]), p=int(match["p"]))
        salt, digest = _unb64(match["salt"]), _unb64(match["hash"])
    except ValueError:  # an unsupported cost, bad base64
        return None
    if not salt or len(digest) < 16:
        return None
    return cost, salt, digest


def _scrypt(password: str, salt: bytes, cost: ScryptCost, length: int = HASH_BYTES) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=2**cost.log_n,
        r=cost.r,
        p=cost.p,
        maxmem=cost.max_memory,
        dklen=length,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
