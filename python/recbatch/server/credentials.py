"""The access keys ``recbatch serve`` accepts.

Two sources, used together:

* ``RECBATCH_ACCESS_KEY_ID`` and ``RECBATCH_SECRET_ACCESS_KEY`` (and optionally ``RECBATCH_SESSION_TOKEN``):
  one key pair;
* a credentials file (``--credentials-file`` or ``RECBATCH_CREDENTIALS_FILE``) in the format of the AWS shared
  credentials file: one INI section per key pair, with ``aws_access_key_id``, ``aws_secret_access_key`` and
  optionally ``aws_session_token``. The section names are labels only.
"""

from __future__ import annotations

import configparser
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from recbatch.server.sigv4 import Credential

ENV_ACCESS_KEY_ID = "RECBATCH_ACCESS_KEY_ID"
ENV_SECRET_ACCESS_KEY = "RECBATCH_SECRET_ACCESS_KEY"
ENV_SESSION_TOKEN = "RECBATCH_SESSION_TOKEN"
ENV_CREDENTIALS_FILE = "RECBATCH_CREDENTIALS_FILE"


class CredentialsError(Exception):
    """The configured credentials cannot be used; the message says what to fix."""


def _add(found: dict[str, Credential], credential: Credential, source: str) -> None:
    if not credential.access_key_id.strip() or not credential.secret_access_key:
        raise CredentialsError(f"{source}: an access key id and a secret access key are both needed")
    previous = found.get(credential.access_key_id)
    if previous is not None and previous != credential:
        raise CredentialsError(
            f"{source}: access key id {credential.access_key_id!r} is configured twice, differently"
        )
    found[credential.access_key_id] = credential


def read_credentials_file(path: str | os.PathLike[str]) -> list[Credential]:
    """Every key pair of an AWS-style credentials file."""
    file = Path(path)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with file.open(encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as e:
        raise CredentialsError(f"cannot read credentials file {file}: {e.strerror or e}") from None
    except configparser.Error as e:
        raise CredentialsError(f"credentials file {file} is not an INI file: {e}") from None
    pairs: list[Credential] = []
    for section in parser.sections():
        values = parser[section]
        key_id = values.get("aws_access_key_id", "").strip()
        secret = values.get("aws_secret_access_key", "").strip()
        if not key_id or not secret:
            raise CredentialsError(
                f"credentials file {file}, section [{section}]: needs aws_access_key_id and aws_secret_access_key"
            )
        token = values.get("aws_session_token", "").strip() or None
        pairs.append(Credential(key_id, secret, token))
    if not pairs:
        raise CredentialsError(
            f"credentials file {file} holds no key pair ([section] with aws_access_key_id ...)"
        )
    return pairs


def credentials_file_is_private(path: str | os.PathLike[str]) -> bool:
    """False when others than the owner may read the file (worth a warning: it holds secrets)."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return True
    return not mode & (stat.S_IRWXG | stat.S_IRWXO)


def load_credentials(
    environ: Mapping[str, str] | None = None, credentials_file: str | os.PathLike[str] | None = None
) -> dict[str, Credential]:
    """All configured key pairs by access key id (empty when none is configured)."""
    env = os.environ if environ is None else environ
    found: dict[str, Credential] = {}
    key_id, secret = env.get(ENV_ACCESS_KEY_ID), env.get(ENV_SECRET_ACCESS_KEY)
    if key_id or secret:
        if not (key_id and secret):
            missing = ENV_SECRET_ACCESS_KEY if key_id else ENV_ACCESS_KEY_ID
            raise CredentialsError(
                f"{missing} is not set: set both {ENV_ACCESS_KEY_ID} and {ENV_SECRET_ACCESS_KEY}"
            )
        _add(found, Credential(key_id.strip(), secret, env.get(ENV_SESSION_TOKEN) or None), "environment")
    path = credentials_file if credentials_file is not None else env.get(ENV_CREDENTIALS_FILE)
    if path:
        for credential in read_credentials_file(path):
            _add(found, credential, str(path))
    return found
