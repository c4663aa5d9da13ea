"""Link codes: the one-time proof that an identifier's owner lets a member link it (DESIGN.md, Security).

The owner of an identifier (a partner for its customer references, the bank's card system for
card tokens) issues a code and shows it to its customer, who types it into the member app:

    code:     LENGTH characters drawn at random from ALPHABET (Crockford's base 32, no I, L, O or U),
              shown in two groups, e.g. "K7Q2M-9XD4T" (50 bits)
    typed:    case, spaces and hyphens do not matter; I and L read as 1, O as 0 (`normalise`)
    stored:   only `code_hash(code)`, the lowercase hex SHA-256 of the normalised code; the clear
              code never leaves the issuer's answer to its customer

The points service accepts a code once, before it expires, for the identifier it was issued
for, and only a few wrong codes per identifier. This module is the reference implementation
for issuers and the points service alike.
"""

from __future__ import annotations

import hashlib
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 10
GROUP = 5
_DOMAIN = b"loyalty-link-code:v1:"
_READS_AS = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})


class MalformedLinkCodeError(ValueError):
    def __init__(self) -> None:
        super().__init__(
            f"a link code is {LENGTH} letters and digits, e.g. K7Q2M-9XD4T; check what you typed against the code shown"
        )


def new_code() -> str:
    """A fresh code, grouped for reading, from the operating system's random source."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:GROUP]}-{raw[GROUP:]}"


def normalise(typed: str) -> str:
    """The code as it is hashed; raises MalformedLinkCodeError for text that cannot be a code."""
    code = typed.strip().upper().translate(_READS_AS)
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        raise MalformedLinkCodeError()
    return code


def code_hash(typed: str) -> str:
    """What issuers publish and the points service stores: hex SHA-256 of the normalised code."""
    return hashlib.sha256(_DOMAIN + normalise(typed).encode()).hexdigest()
