"""S3's bucket naming rules, checked before any request.

A name S3 would refuse otherwise fails only at the first write, deep inside an insert,
as botocore's ``InvalidBucketName`` (or, on a lenient local server, is accepted here and
refused later by AWS). The rules are those of AWS general purpose buckets
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
"""

from __future__ import annotations

import re
import string

from atdata.errors import InvalidArgument

__all__ = ["check_bucket_name"]

_ALLOWED = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_CHARACTERS = set(string.ascii_lowercase + string.digits + ".-")
_IP_ADDRESS = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
RULE = (
    "S3 bucket names are 3-63 characters of lowercase letters, digits, '-' and '.', "
    "start and end with a letter or digit, hold no '..' and are not an IP address"
)


def check_bucket_name(bucket: object, where: str = "bucket") -> str:
    """``bucket`` if S3 accepts it as a bucket name; else ``InvalidArgument`` with the rule and a fix.

    ``where`` names the argument in the message (``"bucket"``, ``"hive_path"``...).
    """
    if not isinstance(bucket, str) or not bucket:
        raise InvalidArgument(
            f"{where}={bucket!r} is invalid: pass a bucket name such as 'my-bucket' "
            "(put key prefixes in write_shards(prefix=...))"
        )
    if "/" in bucket or bucket.startswith("s3:"):
        raise InvalidArgument(
            f"{where}={bucket!r} is not a bucket name: pass only the bucket, e.g. "
            f"{bucket.removeprefix('s3://').partition('/')[0] or 'my-bucket'!r} "
            "(put key prefixes in write_shards(prefix=...))"
        )
    problem = _problem(bucket)
    if problem is not None:
        raise InvalidArgument(f"{where}={bucket!r} is not a valid S3 bucket name ({problem}): {RULE}; {_fix(bucket)}")
    return bucket


def _problem(bucket: str) -> str | None:
    """What is wrong with ``bucket``, or None."""
    if not 3 <= len(bucket) <= 63:
        return f"{len(bucket)} characters"
    if not _ALLOWED.fullmatch(bucket):
        bad = sorted(set(bucket) - _CHARACTERS)
        return f"it holds {', '.join(map(repr, bad))}" if bad else "it must start and end with a letter or digit"
    if ".." in bucket:
        return "it holds '..'"
    if _IP_ADDRESS.fullmatch(bucket):
        return "it is an IP address"
    if bucket.startswith(_RESERVED_PREFIXES) or bucket.endswith(_RESERVED_SUFFIXES):
        return "AWS reserves its prefix or suffix"
    return None


def _fix(bucket: str) -> str:
    """A suggestion: the nearest valid name, when there is an obvious one."""
    candidate = re.sub(r"[^a-z0-9.-]+", "-", bucket.lower())
    candidate = re.sub(r"\.{2,}", ".", candidate).strip(".-")[:63].strip(".-")
    if _problem(candidate) is None:
        return f"e.g. {candidate!r}"
    return "choose another name, e.g. 'my-datasets'"
