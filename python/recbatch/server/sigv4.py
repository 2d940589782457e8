"""Verification of AWS Signature Version 4 (header form), with the standard library only.

The server recomputes the signature the client must have made (the canonical request and string to sign of
the AWS SigV4 documentation, for the configured secret key) and compares it in constant time. Every refusal
is an :class:`AuthError` carrying the error code, HTTP status and message that AWS's JSON services send, so
that botocore raises the same ``ClientError`` as against the real service.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
#: How far the request's X-Amz-Date may be from the server's clock, either way (AWS: 15 minutes).
MAX_CLOCK_SKEW = timedelta(minutes=15)
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_PARAM_RE = re.compile(r"\s*([A-Za-z]+)\s*=\s*([^,\s]*)\s*")


@dataclass(frozen=True)
class Credential:
    """One access key the server accepts; ``session_token`` is required on requests when set."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print a secret by accident
        return f"Credential(access_key_id={self.access_key_id!r}, secret_access_key=***)"


class AuthError(Exception):
    """A request refused before it reached any operation."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs of an HTTP request. ``headers`` keys are lower case; repeated headers are joined
    with ``,`` as SigV4 prescribes. ``path`` and ``query`` are exactly as sent (still percent-encoded)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _missing_token() -> AuthError:
    return AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")


def _parse_authorization(value: str) -> _Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        # A foreign scheme (Basic, Bearer, SigV2...) is a signature AWS cannot read: IncompleteSignature.
        raise AuthError(
            "IncompleteSignatureException",
            f"Unsupported Authorization scheme {algorithm!r}: only {ALGORITHM} (Signature Version 4) is accepted.",
        )
    params: dict[str, str] = {}
    for part in rest.split(","):
        match = _PARAM_RE.fullmatch(part)
        if match:
            params[match.group(1)] = match.group(2)
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not params.get(name)]
    if missing:
        needs = " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        raise AuthError("IncompleteSignatureException", f"{needs} Authorization={value}")
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise AuthError(
            "IncompleteSignatureException",
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/aws4_request, got '{params['Credential']}'.",
        )
    signature = params["Signature"].lower()
    if not re.fullmatch(r"[0-9a-f]{64}", signature):
        raise AuthError("IncompleteSignatureException", "Signature must be 64 hexadecimal characters.")
    signed = tuple(params["SignedHeaders"].lower().split(";"))
    return _Authorization(scope[0], scope[1], scope[2], scope[3], signed, signature)


def _canonical_uri(raw_path: str) -> str:
    # Services other than S3 normalise the path and then URI-encode it once more (the "double encoding" of
    # the SigV4 documentation); botocore does the same, so `/a%20b` is signed as `/a%2520b`.
    path = raw_path or "/"
    normalized = posixpath.normpath(path)
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    normalized = "/" + normalized.lstrip("/")
    return quote(normalized, safe="/~")


def _canonical_query(raw_query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        key, _, value = part.partition("=")
        # Decode then encode with SigV4's rules, so any equivalent encoding the client chose signs the same.
        pairs.append(
            (
                quote(unquote(key.replace("+", " ")), safe="-_.~"),
                quote(unquote(value.replace("+", " ")), safe="-_.~"),
            )
        )
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_header_value(value: str) -> str:
    return " ".join(value.split())


def canonical_request(request: SignedRequest, signed_headers: tuple[str, ...]) -> str:
    """The SigV4 canonical request, hashing the body the server actually received."""
    headers = "".join(
        f"{name}:{_canonical_header_value(request.headers.get(name, ''))}\n" for name in signed_headers
    )
    return "\n".join(
        [
            request.method.upper(),
            _canonical_uri(request.path),
            _canonical_query(request.query),
            headers,
            ";".join(signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_access_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _request_time(request: SignedRequest) -> tuple[str, datetime]:
    raw = request.headers.get("x-amz-date")
    if raw is None:
        raise AuthError(
            "IncompleteSignatureException",
            "Authorization header requires existence of a 'X-Amz-Date' header.",
        )
    try:
        when = datetime.strptime(raw.strip(), _AMZ_DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise AuthError(
            "IncompleteSignatureException",
            f"X-Amz-Date must be in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z', got '{raw}'.",
        ) from None
    return raw.strip(), when


def _fmt(when: datetime) -> str:
    return when.strftime(_AMZ_DATE_FORMAT)


class SigV4Verifier:
    """Checks SigV4 ``Authorization`` headers against a fixed set of access keys."""

    def __init__(self, credentials: Mapping[str, Credential], *, service: str, region: str) -> None:
        if not credentials:
            raise ValueError("SigV4Verifier needs at least one credential")
        self._credentials = dict(credentials)
        self.service = service
        self.region = region

    def verify(self, request: SignedRequest, *, now: datetime | None = None) -> Credential:
        """Return the credential that signed ``request``, or raise :class:`AuthError`."""
        header = request.headers.get("authorization")
        if header is None or not header.strip():
            raise _missing_token()
        auth = _parse_authorization(header)
        amz_date, when = _request_time(request)

        # Checks in the order AWS applies them: who is it, is the scope right, is it fresh, does it match.
        credential = self._credentials.get(auth.access_key_id)
        if credential is None:
            raise AuthError(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        token = request.headers.get("x-amz-security-token")
        if (credential.session_token or token) and not hmac.compare_digest(
            (credential.session_token or "").encode(), (token or "").encode()
        ):
            raise AuthError(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        if auth.service != self.service:
            raise AuthError(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{self.service}'.",
            )
        if auth.region != self.region:
            raise AuthError(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{auth.region}'. "
                f"This server serves region '{self.region}'.",
            )
        if auth.date != amz_date[:8]:
            raise AuthError(
                "InvalidSignatureException",
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{auth.date}' != '{amz_date[:8]}', from '{amz_date}'.",
            )
        for required in ("host", "x-amz-date", "x-amz-target", "x-amz-security-token"):
            if required in request.headers and required not in auth.signed_headers:
                raise AuthError(
                    "InvalidSignatureException",
                    f"'{required}' must be a 'SignedHeader' in the AWS Authorization.",
                )
        if "host" not in auth.signed_headers:
            raise AuthError(
                "InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization."
            )

        current = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        if when < current - MAX_CLOCK_SKEW:
            raise AuthError(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier than {_fmt(current - MAX_CLOCK_SKEW)} "
                f"({_fmt(current)} - 15 min.)",
            )
        if when > current + MAX_CLOCK_SKEW:
            raise AuthError(
                "InvalidSignatureException",
                f"Signature not yet current: {amz_date} is still later than {_fmt(current + MAX_CLOCK_SKEW)} "
                f"({_fmt(current)} + 15 min.)",
            )

        scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
        creq = canonical_request(request, auth.signed_headers)
        string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
        key = signing_key(credential.secret_access_key, auth.date, auth.region, auth.service)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, auth.signature):
            raise AuthError(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            )
        return credential
