"""One redaction helper for everything lakefine prints, logs or sends to MLflow.

``redact`` replaces credentials with ``***`` in a string, or in every string inside
lists, tuples and (nested) dicts, keys included: the user-info part of a URI
(``http://user:password@host`` -> ``http://***@host``), Databricks tokens
(``dapi...``), Hugging Face tokens (``hf_...``), GitHub tokens, JWTs (OAuth access
tokens), ``Bearer``/``Basic`` credentials and ``token=...``-style assignments (query
strings, the databricks-sdk's error and debug text). ``contains_secret`` says whether
a value holds one (the config refuses such values). Pure Python: every layer may use it.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# Tokens recognised anywhere in a string. Each is specific enough not to hit ordinary
# words ("dapi-like-name", "hf_model") and covers the index suffix Databricks adds.
TOKEN_PATTERNS = (
    re.compile(r"dapi[0-9a-f]{32}(-\d+)?"),  # Databricks personal access token
    re.compile(r"dose[0-9a-f]{32}(-\d+)?"),  # Databricks OAuth secret
    re.compile(r"hf_[A-Za-z0-9]{30,}"),  # Hugging Face
    re.compile(r"(ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,}"),  # GitHub
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # a JWT (OAuth access token)
)
# Credentials that are recognised by what stands before them.
_AUTH_HEADER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}")
_SECRET_NAME = r"(?:[a-z0-9]+[_-])*(?:token|secret|password|passwd|api[_-]?key|access[_-]?key|pat)"
# name=value (query strings, the SDK's debug text) and "name": "value" (JSON, dict
# reprs); a prose "token: ..." in a message is left alone.
_ASSIGNMENT = re.compile(rf"(?i)\b({_SECRET_NAME})(\s*=\s*)(?!\*\*\*)([^\s\"'&,;)}}\]]+)")
_QUOTED = re.compile(rf"(?i)([\"']{_SECRET_NAME}[\"']\s*:\s*[\"'])(?!\*\*\*)([^\"']+)")
# scheme://user:password@host: the whole user-info goes (a user name alone is kept,
# unless it is itself a token, which the patterns above catch).
_URI_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s@:]*:[^/\s@]*)@")


def redact_text(text: str) -> str:
    text = _URI_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    for pattern in TOKEN_PATTERNS:
        text = pattern.sub(MASK, text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _QUOTED.sub(lambda m: f"{m.group(1)}{MASK}", text)


def redact(value: Any, _seen: frozenset = frozenset()) -> Any:
    """A copy of ``value`` with every credential masked. Strings, lists, tuples, sets
    and dicts are walked (a structure that contains itself is cut at the repeat);
    other values are returned as they are."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if id(value) in _seen:
            return MASK  # a recursive structure (a YAML alias that contains itself)
        seen = _seen | {id(value)}
        if isinstance(value, dict):
            return {redact(k, seen): redact(v, seen) for k, v in value.items()}
        return type(value)(redact(item, seen) for item in value)
    return value


def contains_secret(value: Any) -> bool:
    """True when a string (or any string inside ``value``) holds a credential."""
    return redact(value) != value
