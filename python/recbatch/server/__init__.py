"""``recbatch serve``: the Amazon Personalize API over HTTP (AWS JSON 1.1, SigV4), for boto3 and the AWS CLI.

Modules: :mod:`~recbatch.server.protocol` (the wire format and service model), :mod:`~recbatch.server.sigv4`
(request authentication), :mod:`~recbatch.server.credentials` (the accepted keys), :mod:`~recbatch.server.app`
(the ASGI application), :mod:`~recbatch.server.serve` (the process: uvicorn, workers, signals) and
:mod:`~recbatch.server.remote` (a boto3 client that knows recbatch's extra operations).

``DATA_PATH`` is the folder to put on botocore's data path (``AWS_DATA_PATH``) so that boto3 and the AWS CLI
know recbatch's extra operations: ``python -m recbatch.server.remote`` prints it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DATA_PATH", "boto3_client", "boto3_session"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing a submodule (or running ``python -m recbatch.server.remote``) loads only it.
    if name == "DATA_PATH":
        from recbatch.server.protocol import DATA_PATH

        return DATA_PATH
    if name in ("boto3_client", "boto3_session"):
        from recbatch.server import remote

        return getattr(remote, name)
    raise AttributeError(f"module 'recbatch.server' has no attribute {name!r}")
