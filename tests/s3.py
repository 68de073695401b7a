"""A bucket of the test's own on the S3 server at OBP_TEST_S3_URL (moto_server in CI).

The variable is the server's endpoint, such as `http://127.0.0.1:5455`; without it the tests
that need S3 are skipped (failed under CI=true, like every backend in tests/servers.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pytest_asyncio
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from tests.servers import server_url

if TYPE_CHECKING:
    from aiobotocore.session import ClientCreatorContext
    from types_aiobotocore_s3 import S3Client

REGION = "us-east-1"
# moto accepts any credentials; a real server under test would be given these.
ACCESS_KEY = "obp-test"
SECRET_KEY = "obp-test-secret"


@dataclass(frozen=True)
class S3Bucket:
    """A bucket name no other test uses, on the test S3 server; removed after the test."""

    endpoint: str
    name: str

    @property
    def url(self) -> str:
        """`OBP_BLOB_URL` for this bucket, creating it at start."""
        query = urlencode(
            {
                "endpoint": self.endpoint,
                "region": REGION,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "create_bucket": "true",
            }
        )
        return f"s3://{self.name}?{query}"

    def client(self) -> ClientCreatorContext[S3Client]:
        """A plain S3 client on the server, to look behind the adapter's back."""
        return get_session().create_client(
            "s3",
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    async def listing(self) -> list[str]:
        """Every object key, and `upload:KEY` for every unfinished multipart upload."""
        async with self.client() as client:
            try:
                found: list[str] = []
                async for objects in client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.name
                ):
                    found += [item["Key"] for item in objects.get("Contents", [])]
                async for uploads in client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.name
                ):
                    found += [f"upload:{item['Key']}" for item in uploads.get("Uploads", [])]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                    return []
                raise
        return sorted(found)

    async def remove(self) -> None:
        """Abort uploads, delete every object, then the bucket (if it was ever made)."""
        async with self.client() as client:
            try:
                async for uploads in client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.name
                ):
                    for upload in uploads.get("Uploads", []):
                        await client.abort_multipart_upload(
                            Bucket=self.name, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                async for objects in client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.name
                ):
                    for item in objects.get("Contents", []):
                        await client.delete_object(Bucket=self.name, Key=item["Key"])
                await client.delete_bucket(Bucket=self.name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                    raise


@asynccontextmanager
async def fresh_bucket() -> AsyncIterator[S3Bucket]:
    """A bucket name no one used on the test S3 server (skip if none), removed on the way out."""
    bucket = S3Bucket(endpoint=server_url("s3"), name=f"obp-test-{uuid.uuid4().hex}")
    try:
        yield bucket
    finally:
        await bucket.remove()


@pytest_asyncio.fixture
async def s3_bucket() -> AsyncIterator[S3Bucket]:
    """A fresh bucket name on the test S3 server, and the bucket removed afterwards."""
    async with fresh_bucket() as bucket:
        yield bucket
