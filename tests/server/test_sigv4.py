"""SigV4 verification against requests signed by botocore itself (the signer boto3 and the AWS CLI use)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from recbatch.server.sigv4 import AuthError, Credential, SignedRequest, SigV4Verifier

KEY = Credential("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
OTHER = Credential("AKIDOTHER", "another-secret")


def sign(
    url: str = "http://127.0.0.1:8080/",
    body: bytes = b'{"maxResults": 5}',
    *,
    credential: Credential = KEY,
    region: str = "us-east-1",
    service: str = "personalize",
    headers: dict[str, str] | None = None,
    token: str | None = None,
) -> SignedRequest:
    """A request signed by botocore's SigV4Auth, as the server receives it."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonPersonalize.ListBatchInferenceJobs",
            **(headers or {}),
        },
    )
    creds = Credentials(credential.access_key_id, credential.secret_access_key, token)
    SigV4Auth(creds, service, region).add_auth(request)
    parts = urlsplit(url)
    sent = {k.lower(): str(v) for k, v in request.headers.items()}
    sent["host"] = parts.netloc
    return SignedRequest("POST", parts.path or "/", parts.query, sent, body)


def signed_at(request: SignedRequest) -> datetime:
    return datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def verify(
    request: SignedRequest, v: SigV4Verifier | None = None, *, skew: timedelta = timedelta(0)
) -> Credential:
    """Verify as a server whose clock reads the signing time plus ``skew``."""
    return (v or verifier()).verify(request, now=signed_at(request) + skew)


def verifier(*creds: Credential) -> SigV4Verifier:
    pairs = creds or (KEY, OTHER)
    return SigV4Verifier({c.access_key_id: c for c in pairs}, service="personalize", region="us-east-1")


def refused(
    request: SignedRequest, *, v: SigV4Verifier | None = None, skew: timedelta = timedelta(0)
) -> AuthError:
    with pytest.raises(AuthError) as caught:
        try:
            now = signed_at(request)
        except (KeyError, ValueError):
            now = datetime.now(timezone.utc)
        (v or verifier()).verify(request, now=now + skew)
    return caught.value


def test_botocore_signature_is_accepted_for_each_configured_key() -> None:
    assert verify(sign()) == KEY
    assert verify(sign(credential=OTHER)) == OTHER


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://localhost:9/a/b%20c/../d",
        "http://127.0.0.1:8080/x?b=2&a=1&a=0&empty=&sp=a%20b",
        "http://127.0.0.1:8080/?q=user~x%2Fy",
    ],
)
def test_paths_and_query_strings_are_canonicalised_as_botocore_does(url: str) -> None:
    assert verify(sign(url)) == KEY


def test_header_whitespace_and_empty_body_sign_the_same() -> None:
    request = sign(body=b"", headers={"X-Custom": "  a   b  "})
    assert verify(request) == KEY


def test_session_token_must_match_when_configured() -> None:
    with_token = Credential("AKIDTOKEN", "secret", "the-token")
    v = verifier(with_token)
    assert verify(sign(credential=with_token, token="the-token"), v) == with_token
    assert refused(sign(credential=with_token, token="other"), v=v).code == "UnrecognizedClientException"
    assert refused(sign(credential=with_token), v=v).code == "UnrecognizedClientException"
    # a token the server does not know is refused too, as AWS refuses an invalid token
    assert refused(sign(token="unexpected")).code == "UnrecognizedClientException"


def test_missing_authorization() -> None:
    request = sign()
    headers = {k: v for k, v in request.headers.items() if k != "authorization"}
    error = refused(SignedRequest("POST", "/", "", headers, request.body))
    assert (error.code, error.status) == ("MissingAuthenticationTokenException", 403)


@pytest.mark.parametrize(
    ("authorization", "fragment"),
    [
        ("Basic dXNlcjpwYXNz", "Unsupported Authorization scheme"),
        ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + "0" * 64, "requires 'Credential'"),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260301/us-east-1/personalize/aws4_request",
            "'Signature'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260301/us-east-1, SignedHeaders=host, Signature="
            + "0" * 64,
            "5 slash-delimited",
        ),
        (
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260301/us-east-1/personalize/aws4_request, "
                "SignedHeaders=host, Signature=xyz"
            ),
            "64 hexadecimal",
        ),
    ],
)
def test_malformed_authorization_is_incomplete_signature(authorization: str, fragment: str) -> None:
    request = sign()
    headers = {**request.headers, "authorization": authorization}
    error = refused(SignedRequest("POST", "/", "", headers, request.body))
    assert error.code == "IncompleteSignatureException"
    assert fragment in error.message


def test_missing_or_malformed_date_is_incomplete_signature() -> None:
    request = sign()
    no_date = {k: v for k, v in request.headers.items() if k != "x-amz-date"}
    assert (
        refused(SignedRequest("POST", "/", "", no_date, request.body)).code == "IncompleteSignatureException"
    )
    bad_date = {**request.headers, "x-amz-date": "2026-03-01 12:00"}
    assert (
        refused(SignedRequest("POST", "/", "", bad_date, request.body)).code == "IncompleteSignatureException"
    )


def test_unknown_access_key_is_unrecognized_client() -> None:
    error = refused(sign(credential=Credential("AKIDUNKNOWN", "x")))
    assert (error.code, error.status) == ("UnrecognizedClientException", 403)


def test_wrong_secret_is_invalid_signature() -> None:
    error = refused(sign(credential=Credential(KEY.access_key_id, "not-the-secret")))
    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    assert "does not match" in error.message


@pytest.mark.parametrize("field", ["body", "target", "path", "query", "host"])
def test_any_tampering_after_signing_is_invalid_signature(field: str) -> None:
    request = sign("http://127.0.0.1:8080/?a=1")
    headers = dict(request.headers)
    body, path, query = request.body, request.path, request.query
    if field == "body":
        body = b'{"maxResults": 6}'
    elif field == "target":
        headers["x-amz-target"] = "AmazonPersonalize.CreateBatchInferenceJob"
    elif field == "path":
        path = "/other"
    elif field == "query":
        query = "a=2"
    else:
        headers["host"] = "127.0.0.1:8081"
    assert refused(SignedRequest("POST", path, query, headers, body)).code == "InvalidSignatureException"


def test_expired_and_future_signatures() -> None:
    request = sign()
    signed = request.headers["x-amz-date"]
    old = refused(request, skew=timedelta(minutes=16))
    assert old.code == "InvalidSignatureException"
    earliest = (signed_at(request) + timedelta(minutes=1)).strftime("%Y%m%dT%H%M%SZ")
    assert old.message.startswith(f"Signature expired: {signed} is now earlier than {earliest}")
    future = refused(request, skew=-timedelta(minutes=16))
    assert future.code == "InvalidSignatureException"
    assert future.message.startswith(f"Signature not yet current: {signed} is still later than")
    # within the allowed skew either way
    assert verify(request, skew=timedelta(minutes=14, seconds=59)) == KEY
    assert verify(request, skew=-timedelta(minutes=14, seconds=59)) == KEY


def test_scope_must_name_this_service_and_region() -> None:
    assert "correct service" in refused(sign(service="s3")).message
    error = refused(sign(region="eu-west-1"))
    assert error.code == "InvalidSignatureException"
    assert "'eu-west-1'" in error.message and "'us-east-1'" in error.message


def test_target_and_host_must_be_signed() -> None:
    request = sign()
    auth = request.headers["authorization"].replace("x-amz-target;", "").replace(";x-amz-target", "")
    headers = {**request.headers, "authorization": auth}
    error = refused(SignedRequest("POST", "/", "", headers, request.body))
    assert "'x-amz-target' must be a 'SignedHeader'" in error.message


def test_credential_repr_hides_the_secret() -> None:
    assert KEY.secret_access_key not in repr(KEY)
