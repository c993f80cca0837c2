"""A real S3-compatible server for the tests: moto's server mode in a process of its own, on
a free port of 127.0.0.1, with a bucket, an access key allowed to use it, and every
request's signature checked.

moto checks signatures only once told to authenticate (its `reset-auth` call, what
INITIAL_NO_AUTH_ACTION_COUNT sets at start): the setup (an IAM user with an `s3:*` policy,
its access key, the bucket) runs before that, and from then on each request must carry a
valid AWS Signature Version 4 by that key, which moto recomputes with botocore. A wrong
secret gets 403 SignatureDoesNotMatch, as from AWS.

A test module that wants Rapport on S3 imports the fixture and builds its settings from it:

    from tests.media.s3_server import S3Server, s3_server_fixture  # noqa: F401 (`s3_server`)

    @pytest.fixture(scope="module")
    def module_settings(s3_server: S3Server, ...) -> Settings:
        return make_settings(**s3_server.settings_overrides(), ...)

`s3_server.client()` is a boto3 client of the same bucket, to look at what was stored
independently of Rapport's own S3 code (`list_keys()` does the common case).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.support import free_port

REGION = "us-east-1"
BUCKET = "rapport-media"
STARTUP_TIMEOUT_S = 60
_ALLOW_S3 = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str

    def settings_overrides(self) -> dict[str, Any]:
        """Settings that put Rapport's media on this server."""
        return {
            "media_storage": "s3",
            "s3_endpoint": self.endpoint,
            "s3_bucket": self.bucket,
            "s3_region": self.region,
            "s3_access_key_id": self.access_key_id,
            "s3_secret_access_key": self.secret_access_key,
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def empty(self) -> None:
        """Remove every object: a test that counts what is stored starts from nothing."""
        client = self.client()
        for key in self.list_keys():
            client.delete_object(Bucket=self.bucket, Key=key)

    def list_keys(self) -> list[str]:
        keys: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{endpoint}/moto-api/data.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"moto's server did not answer within {STARTUP_TIMEOUT_S} s: {log.read_text()[-2000:]}")


def _set_up(endpoint: str) -> S3Server:
    # Unauthenticated still: moto takes any credentials until reset-auth below.
    anyone = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup", "region_name": REGION}
    iam = boto3.client("iam", endpoint_url=endpoint, **anyone)
    iam.create_user(UserName="rapport")
    iam.put_user_policy(UserName="rapport", PolicyName="media", PolicyDocument=_ALLOW_S3)
    key = iam.create_access_key(UserName="rapport")["AccessKey"]
    boto3.client("s3", endpoint_url=endpoint, **anyone).create_bucket(Bucket=BUCKET)
    httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0", timeout=10).raise_for_status()
    return S3Server(endpoint, BUCKET, REGION, key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture(scope="module", name="s3_server")
def s3_server_fixture() -> Iterator[S3Server]:
    """moto's S3 for the module: started, set up, and stopped after the module's tests."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="rapport-moto-") as folder:
        log = Path(folder) / "moto.log"
        with log.open("wb") as sink:
            # moto spools objects past a few MB to temporary files: into the folder removed
            # afterwards.
            env = {**os.environ, "TMPDIR": folder}
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
            )
            try:
                _wait_until_up(endpoint, process, log)
                yield _set_up(endpoint)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
