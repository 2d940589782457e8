"""The modelled errors of the Amazon Personalize API, as boto3 raises them.

Every error is a :class:`botocore.exceptions.ClientError` subclass whose ``response`` dictionary is
shaped exactly as botocore builds it from an AWS JSON 1.1 error reply::

    {"Error": {"Code": "InvalidInputException", "Message": "..."},
     "ResponseMetadata": {"RequestId": ..., "HTTPStatusCode": 400, "HTTPHeaders": {...}, "RetryAttempts": 0},
     "message": "..."}

so ``except client.exceptions.InvalidInputException`` and ``e.response["Error"]["Code"]`` work as with
boto3. The HTTP server turns one back into ``{"__type": code, "message": message}`` with :attr:`http_status`.
"""

from __future__ import annotations

import uuid
from email.utils import formatdate
from typing import Any, ClassVar

from botocore.exceptions import ClientError

_ClientError = ClientError  # the class-level name ClientError below shadows it in annotations

__all__ = [
    "ERROR_CLASSES",
    "ClientExceptions",
    "InvalidInputException",
    "InvalidNextTokenException",
    "LimitExceededException",
    "PersonalizeError",
    "ResourceAlreadyExistsException",
    "ResourceInUseException",
    "ResourceNotFoundException",
    "TooManyTagsException",
    "response_metadata",
]


def response_metadata(status: int = 200, request_id: str | None = None) -> dict[str, Any]:
    """The ``ResponseMetadata`` member that botocore adds to every parsed reply."""
    request_id = request_id or str(uuid.uuid4())
    return {
        "RequestId": request_id,
        "HTTPStatusCode": status,
        "HTTPHeaders": {
            "date": formatdate(usegmt=True),
            "content-type": "application/x-amz-json-1.1",
            "x-amzn-requestid": request_id,
        },
        "RetryAttempts": 0,
    }


class PersonalizeError(ClientError):
    """Base of the modelled errors; ``code`` is the ``__type`` on the wire."""

    code: ClassVar[str] = "InternalFailure"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, operation_name: str = "", *, request_id: str | None = None) -> None:
        response: dict[str, Any] = {
            "Error": {"Message": message, "Code": self.code},
            "ResponseMetadata": response_metadata(self.http_status, request_id),
            # botocore adds the members of a modelled error shape at the top level too.
            "message": message,
        }
        super().__init__(response, operation_name)  # type: ignore[arg-type]
        self.message = message

    def with_operation(self, operation_name: str) -> PersonalizeError:
        """The same error, naming the operation in its text as botocore does."""
        return type(self)(
            self.message, operation_name, request_id=self.response["ResponseMetadata"]["RequestId"]
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # ClientError's own pickling loses the subclass' signature; keep errors picklable across processes.
        return (type(self), (self.message, self.operation_name))


class InvalidInputException(PersonalizeError):
    """A request member breaks a rule of the API (pattern, length, range, combination)."""

    code = "InvalidInputException"


class ResourceAlreadyExistsException(PersonalizeError):
    """A job with this name exists already (names are never reused)."""

    code = "ResourceAlreadyExistsException"


class ResourceNotFoundException(PersonalizeError):
    """No job, solution version, recipe or filter with that ARN."""

    code = "ResourceNotFoundException"


class ResourceInUseException(PersonalizeError):
    """The resource is not in a state that allows the request (for example not ACTIVE)."""

    code = "ResourceInUseException"


class LimitExceededException(PersonalizeError):
    """Too many jobs queued or running (``max_queued_jobs``). botocore retries this one as throttling."""

    code = "LimitExceededException"


class TooManyTagsException(PersonalizeError):
    """More tags than one resource may carry."""

    code = "TooManyTagsException"


class InvalidNextTokenException(PersonalizeError):
    """A nextToken that this home did not issue, or one issued for another listing."""

    code = "InvalidNextTokenException"


ERROR_CLASSES: dict[str, type[PersonalizeError]] = {
    cls.code: cls
    for cls in (
        InvalidInputException,
        ResourceAlreadyExistsException,
        ResourceNotFoundException,
        ResourceInUseException,
        LimitExceededException,
        TooManyTagsException,
        InvalidNextTokenException,
    )
}


class ClientExceptions:
    """The ``client.exceptions`` namespace of a boto3 client, for our client."""

    ClientError = ClientError
    InvalidInputException = InvalidInputException
    ResourceAlreadyExistsException = ResourceAlreadyExistsException
    ResourceNotFoundException = ResourceNotFoundException
    ResourceInUseException = ResourceInUseException
    LimitExceededException = LimitExceededException
    TooManyTagsException = TooManyTagsException
    InvalidNextTokenException = InvalidNextTokenException

    def from_code(self, error_code: str) -> type[_ClientError]:
        """The class for an error code; ``ClientError`` for codes this API does not model (as botocore)."""
        return ERROR_CLASSES.get(error_code, _ClientError)
