"""Which access keys the server accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from recbatch.server.credentials import CredentialsError, credentials_file_is_private, load_credentials
from recbatch.server.sigv4 import Credential


def test_environment_pair_and_file_pairs_together(tmp_path: Path) -> None:
    file = tmp_path / "keys"
    file.write_text(
        "[a]\naws_access_key_id = AKA\naws_secret_access_key = sa\n"
        "[b]\naws_access_key_id=AKB\naws_secret_access_key=sb\naws_session_token=tok\n"
    )
    env = {"RECBATCH_ACCESS_KEY_ID": "AKENV", "RECBATCH_SECRET_ACCESS_KEY": "senv"}
    found = load_credentials(env, file)
    assert found == {
        "AKENV": Credential("AKENV", "senv"),
        "AKA": Credential("AKA", "sa"),
        "AKB": Credential("AKB", "sb", "tok"),
    }
    assert load_credentials({"RECBATCH_CREDENTIALS_FILE": str(file)}).keys() == {"AKA", "AKB"}
    assert load_credentials({}) == {}


def test_the_same_key_twice_with_different_secrets_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "keys"
    file.write_text("[a]\naws_access_key_id = AK\naws_secret_access_key = one\n")
    assert load_credentials({"RECBATCH_ACCESS_KEY_ID": "AK", "RECBATCH_SECRET_ACCESS_KEY": "one"}, file)
    with pytest.raises(CredentialsError, match="configured twice"):
        load_credentials({"RECBATCH_ACCESS_KEY_ID": "AK", "RECBATCH_SECRET_ACCESS_KEY": "two"}, file)


def test_private_file_check(tmp_path: Path) -> None:
    file = tmp_path / "keys"
    file.write_text("")
    file.chmod(0o600)
    assert credentials_file_is_private(file)
    file.chmod(0o640)
    assert not credentials_file_is_private(file)
