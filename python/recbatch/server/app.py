"""The HTTP front of recbatch: an ASGI application that answers AWS JSON 1.1 requests for ``personalize``.

:class:`Service` is the protocol, synchronous and independent of any HTTP server: authenticate, find the
operation, check the JSON, call the job client, encode the answer. :class:`AsgiApp` adapts it to ASGI (uvicorn
serves it): it reads the body within the size limit and runs :meth:`Service.handle` on a thread pool, because
the job client is blocking (SQLite, smart_open).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

from recbatch.server import protocol
from recbatch.server.sigv4 import AuthError, SignedRequest, SigV4Verifier

log = logging.getLogger("recbatch.server")

#: The default limit on a request body. The largest valid request (a create with 200 tags, a full config and
#: maximal ARNs and paths) is well under 100 KiB; AWS's own JSON services refuse bodies of some MiB.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: Seconds a connection gets to send a whole request (from its opening, or from its previous response);
#: ``recbatch serve`` closes it then (server/read_deadline.py).
DEFAULT_REQUEST_TIMEOUT = 20.0
#: A body over the limit is still read (and thrown away) up to this size, so that the client reads our 413
#: rather than a reset connection; past it the connection is closed.
_DRAIN_BYTES = 64 * 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class Response:
    status: int
    body: bytes
    request_id: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    operation: str | None = None
    error_code: str | None = None

    def all_headers(self) -> list[tuple[bytes, bytes]]:
        base = [
            ("content-type", protocol.CONTENT_TYPE),
            ("content-length", str(len(self.body))),
            ("x-amzn-requestid", self.request_id),
        ]
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in base + self.headers]


def error_response(
    request_id: str, code: str, message: str, status: int, operation: str | None = None
) -> Response:
    return Response(
        status, protocol.encode_error(code, message), request_id, operation=operation, error_code=code
    )


#: ``call(operation, params)``: run one operation of the job layer; raises botocore ClientError subclasses.
Call = Callable[[str, dict[str, Any]], Mapping[str, Any]]


class Service:
    """AWS JSON 1.1 dispatch onto the job layer.

    ``call`` runs an operation by name with the request's members (the job client's
    ``client.service.call``); ``operations`` are the names it serves. ``verifier`` is None when no keys are
    configured, which the server allows on loopback addresses only.
    """

    def __init__(self, call: Call, operations: Iterable[str], verifier: SigV4Verifier | None) -> None:
        self._call = call
        model_operations = set(protocol.service_model().operation_names)
        unknown = sorted(set(operations) - model_operations)
        if unknown:
            raise ValueError(f"operations without a shape in the service model: {', '.join(unknown)}")
        self.operations = frozenset(operations)
        self.verifier = verifier

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, request_id: str
    ) -> Response:
        """Answer one request; never raises (our own faults become a 500 InternalFailure).

        The order of the checks matters: nothing about operations is revealed to an unauthenticated caller,
        and nothing reaches the job layer before the request is authenticated, named and well-formed JSON.
        """
        operation: str | None = None
        try:
            if method != "POST":
                raise protocol.ProtocolError(
                    "UnknownOperationException",
                    f"{method} is not served: AWS JSON 1.1 requests are 'POST /'.",
                )
            if self.verifier is not None:
                self.verifier.verify(SignedRequest(method, path, query, headers, body))
            if path != "/":
                raise protocol.ProtocolError(
                    "UnknownOperationException",
                    f"No resource at path '{path}': AWS JSON 1.1 requests are 'POST /'.",
                )
            operation = protocol.parse_target(headers.get("x-amz-target"))
            if operation not in self.operations:
                raise protocol.ProtocolError(
                    "UnknownOperationException",
                    f"Unknown operation '{operation}'. This endpoint serves: {', '.join(sorted(self.operations))}.",
                )
            params = protocol.conform(
                protocol.operation_model(operation).input_shape, protocol.parse_body(body)
            )
            result = self._call(operation, params)
            return Response(200, protocol.encode_response(result), request_id, operation=operation)
        except (AuthError, protocol.ProtocolError) as e:
            return error_response(request_id, e.code, e.message, e.status, operation)
        except ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code") or "InvalidInputException")
            message = str(error.get("Message") or e)
            return error_response(request_id, code, message, 400, operation)
        except ParamValidationError as e:
            return error_response(
                request_id, "InvalidInputException", str(e.kwargs.get("report", e)), 400, operation
            )
        except Exception:
            log.exception("request %s (%s) failed", request_id, operation)
            return error_response(
                request_id,
                "InternalFailure",
                f"The server could not process the request (request id {request_id}); its log has the details.",
                500,
                operation,
            )


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        # SigV4: a header sent several times is signed as its values joined by ','.
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


class AsgiApp:
    """ASGI 3 application around a :class:`Service`."""

    def __init__(
        self, service: Service, executor: Executor, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> None:
        self.service = service
        self.executor = executor
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets are turned off in the server config
            return
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        headers = _headers(scope)
        response = await self._respond(scope, receive, headers, request_id)
        if response is None:  # the client went away
            return
        await send(
            {"type": "http.response.start", "status": response.status, "headers": response.all_headers()}
        )
        await send({"type": "http.response.body", "body": response.body})
        log.info(
            "%s %s %s %d %s %.1fms",
            request_id,
            scope.get("client", ("-",))[0],
            response.operation or "-",
            response.status,
            response.error_code or "OK",
            (time.monotonic() - started) * 1000,
        )

    async def _respond(
        self, scope: Scope, receive: Receive, headers: dict[str, str], request_id: str
    ) -> Response | None:
        declared = headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > _DRAIN_BYTES:
            return self._too_large(request_id)
        body = bytearray()
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received <= self.max_body_bytes:
                body += chunk
            elif body:
                body = bytearray()  # over the limit: keep counting, stop keeping
            if received > _DRAIN_BYTES:
                break
            if not message.get("more_body", False):
                break
        if received > self.max_body_bytes:
            return self._too_large(request_id)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor,
            self.service.handle,
            scope["method"],
            scope.get("raw_path", scope["path"].encode()).decode("latin-1").partition("?")[0] or "/",
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            bytes(body),
            request_id,
        )

    def _too_large(self, request_id: str) -> Response:
        return error_response(
            request_id,
            "RequestEntityTooLargeException",
            f"The request body is larger than this server's limit of {self.max_body_bytes} bytes "
            f"(recbatch serve --max-body-bytes).",
            413,
        )
