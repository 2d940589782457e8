"""A boto3 client for a ``recbatch serve`` endpoint that also knows recbatch's extra operations.

A plain ``boto3.client("personalize", endpoint_url=...)`` drives every Personalize operation recbatch serves.
Operations that Personalize does not have (``import_solution_version``) need botocore to know their shapes:
:func:`boto3_client` adds recbatch's model extras to the session's data path. From the shell, the same is
``AWS_DATA_PATH=$(python -m recbatch.server.remote)`` before ``aws personalize import-solution-version ...``.
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from recbatch.server.protocol import DATA_PATH


def boto3_session(*, profile_name: str | None = None) -> boto3.Session:
    """A boto3 session whose ``personalize`` model includes recbatch's extra operations."""
    core = botocore.session.Session(profile=profile_name)
    core.get_component("data_loader").search_paths.insert(0, str(DATA_PATH))
    return boto3.Session(botocore_session=core)


def boto3_client(
    endpoint_url: str,
    *,
    profile_name: str | None = None,
    region_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    config: Config | None = None,
) -> Any:
    """``boto3.client("personalize", endpoint_url=...)`` that also has recbatch's extra operations.

    Credentials and region not given here come from the usual AWS settings, as with boto3.
    """
    return boto3_session(profile_name=profile_name).client(
        "personalize",
        endpoint_url=endpoint_url,
        region_name=region_name,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        config=config,
    )


if __name__ == "__main__":
    print(DATA_PATH)
