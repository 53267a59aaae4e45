"""The sandbox's API keys: HS256 JWTs shaped like Supabase's legacy anon / service_role keys.

The Edge Functions server's ``verify_jwt`` gate checks them with :func:`verify_jwt`; the sandbox
manager issues them with :func:`make_jwt` from the secret in its state file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

#: 2100-01-01: sandbox keys never expire, like Supabase's local legacy keys (fixed far ``exp``).
FAR_FUTURE_EXP = 4_102_444_800


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, signing_input: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()


def make_jwt(secret: str, role: str, *, expires_at: int = FAR_FUTURE_EXP) -> str:
    """An HS256 JWT with ``{"iss": "cronkit-sandbox", "role": role, "iat", "exp"}``."""
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"iss": "cronkit-sandbox", "role": role, "iat": int(time.time()), "exp": expires_at}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode("utf-8")) for part in (header, payload)
    )
    return f"{signing_input}.{_b64url(_sign(secret, signing_input))}"


def verify_jwt(token: str, secret: str) -> dict[str, Any] | None:
    """The payload of a valid, unexpired HS256 ``token`` signed with ``secret``; None otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64url_decode(parts[0]))
        signature = _b64url_decode(parts[2])
    except ValueError:
        return None
    # Only HS256: accepting the token's own "alg" would let "none" through.
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return None
    if not hmac.compare_digest(_sign(secret, f"{parts[0]}.{parts[1]}"), signature):
        return None
    try:
        payload = json.loads(_b64url_decode(parts[1]))
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    exp = payload.get("exp")
    if exp is not None and (not isinstance(exp, int | float) or exp <= time.time()):
        return None
    return payload


def bearer_token(value: str | None) -> str | None:
    # Case-sensitive like Supabase's gateway, which splits on " " and expects exactly "Bearer".
    if value is None or not value.startswith("Bearer "):
        return None
    return value[len("Bearer ") :]

