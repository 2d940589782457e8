"""Where recbatch keeps its state, and which region and account its ARNs name.

Resolution order, first match wins:

* home: the ``home`` argument, ``$RECBATCH_HOME``, ``~/.recbatch``.
* region: the ``region`` argument, ``$AWS_REGION``, ``$AWS_DEFAULT_REGION``, the region of the active AWS
  profile (``~/.aws/config``, as botocore reads it), ``us-east-1``.
* account: the ``account`` argument, ``$RECBATCH_ACCOUNT_ID``, the placeholder ``000000000000``. recbatch
  never calls STS to learn the real account: the account only shapes ARNs, and working offline matters more.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "JobsConfig",
    "resolve_account",
    "resolve_home",
    "resolve_region",
]

DEFAULT_REGION = "us-east-1"
#: Placeholder account id used in ARNs when none is configured.
DEFAULT_ACCOUNT = "000000000000"

_REGION_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)+")
_ACCOUNT_RE = re.compile(r"\d{12}")


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The home directory (not created here)."""
    if home is not None:
        return Path(home).expanduser().absolute()
    env = os.environ.get("RECBATCH_HOME")
    if env:
        return Path(env).expanduser().absolute()
    return Path("~/.recbatch").expanduser().absolute()


def _profile_region() -> str | None:
    # botocore knows every place a region may be configured (profile, config file); ask it, but
    # never let a broken AWS config file stop a local tool from starting.
    import botocore.exceptions
    import botocore.session

    try:
        region = botocore.session.Session().get_config_variable("region")
    except (botocore.exceptions.BotoCoreError, OSError, ValueError):
        return None
    return region if isinstance(region, str) and region else None


def resolve_region(region: str | None = None) -> str:
    """The region named in ARNs."""
    value = (
        region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or _profile_region()
        or DEFAULT_REGION
    )
    if not _REGION_RE.fullmatch(value):
        raise ValueError(f"invalid region {value!r}: expected a name such as 'us-east-1'")
    return value


def resolve_account(account: str | None = None) -> str:
    """The 12-digit account id named in ARNs."""
    value = account or os.environ.get("RECBATCH_ACCOUNT_ID") or DEFAULT_ACCOUNT
    if not _ACCOUNT_RE.fullmatch(value):
        raise ValueError(f"invalid account id {value!r}: expected 12 digits")
    return value


@dataclass(frozen=True)
class JobsConfig:
    """Everything the job layer is configured with; build one with :meth:`resolve`.

    Attributes:
        home: directory holding ``recbatch.sqlite3``.
        region, account: what ARNs name; a home may hold several region/account namespaces.
        threads: scoring threads per job (None: the scoring API's default).
        stale_after: seconds without a heartbeat after which a running job is presumed dead and requeued.
        heartbeat_interval: seconds between heartbeats of a running job.
        poll_interval: seconds a worker sleeps when no job is pending (a job created by the same client
            wakes its worker at once).
        progress_interval: at most one progress write per this many seconds per job.
        max_queued_jobs: pending plus running jobs per region and account beyond which creating one is
            LimitExceededException.
        max_recoveries: a job whose worker died this many times is failed instead of requeued again
            (a job that kills its worker, for example by running out of memory, must not loop forever).
    """

    home: Path
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    threads: int | None = None
    stale_after: float = 60.0
    heartbeat_interval: float = 5.0
    poll_interval: float = 0.5
    progress_interval: float = 0.5
    max_queued_jobs: int = 1000
    max_recoveries: int = 3

    @classmethod
    def resolve(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        region: str | None = None,
        account: str | None = None,
        threads: int | None = None,
        stale_after: float = 60.0,
        heartbeat_interval: float | None = None,
        poll_interval: float = 0.5,
        progress_interval: float = 0.5,
        max_queued_jobs: int = 1000,
        max_recoveries: int = 3,
    ) -> JobsConfig:
        """Apply the resolution rules of this module and check the numbers."""
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 (or left unset: every usable CPU), got {threads}")
        if stale_after <= 0 or poll_interval <= 0 or progress_interval < 0:
            raise ValueError("stale_after and poll_interval must be > 0, progress_interval >= 0")
        if heartbeat_interval is None:
            # Several heartbeats per stale period, so one late heartbeat never looks like a dead worker.
            heartbeat_interval = min(5.0, stale_after / 4)
        if not 0 < heartbeat_interval < stale_after:
            raise ValueError("heartbeat_interval must be > 0 and shorter than stale_after")
        if max_queued_jobs < 1 or max_recoveries < 1:
            raise ValueError("max_queued_jobs and max_recoveries must be >= 1")
        return cls(
            home=resolve_home(home),
            region=resolve_region(region),
            account=resolve_account(account),
            threads=threads,
            stale_after=float(stale_after),
            heartbeat_interval=float(heartbeat_interval),
            poll_interval=float(poll_interval),
            progress_interval=float(progress_interval),
            max_queued_jobs=max_queued_jobs,
            max_recoveries=max_recoveries,
        )
