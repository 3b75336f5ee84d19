#!/usr/bin/python3
"""boto3 on the other side of ddpipe's S3 tests (Debian python3-boto3).

  boto3_helper.py put BUCKET KEY FILE    upload_file (multipart above 5 MiB, 5 MiB parts)
  boto3_helper.py get BUCKET KEY FILE    download_file
  boto3_helper.py sign                   stdin: JSON list of requests; stdout: JSON list of the
                                         Authorization header (or presigned URL) botocore computes

put/get use the test server of scripts/s3-test-server.sh (DDPIPE_S3_TEST_* variables).
"""
import datetime
import json
import os
import sys
from unittest import mock

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["DDPIPE_S3_TEST_ENDPOINT"],
        aws_access_key_id=os.environ["DDPIPE_S3_TEST_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["DDPIPE_S3_TEST_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("DDPIPE_S3_TEST_REGION") or "us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


TRANSFER = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)


def sign(item):
    """botocore's S3 signer over the same inputs: method, URL, signed headers, body, time."""
    req = AWSRequest(method=item["method"], url=item["url"], headers=item["headers"],
                     data=item["body"].encode("latin-1"))
    req.context["client_config"] = Config(s3={"payload_signing_enabled": not item["unsigned"]})
    creds = Credentials(item["access_key_id"], item["secret_access_key"], item["token"] or None)
    when = datetime.datetime.strptime(item["amz_date"], "%Y%m%dT%H%M%SZ")
    if "expires" in item:
        auth = S3SigV4QueryAuth(creds, "s3", item["region"], expires=item["expires"])
    else:
        auth = S3SigV4Auth(creds, "s3", item["region"])
    with mock.patch("botocore.auth.datetime") as clock:
        clock.datetime.utcnow.return_value = when
        auth.add_auth(req)
    return req.url if "expires" in item else req.headers["Authorization"]


def main(argv):
    if argv[1] == "put":
        client().upload_file(argv[4], argv[2], argv[3], Config=TRANSFER)
    elif argv[1] == "get":
        client().download_file(argv[2], argv[3], argv[4], Config=TRANSFER)
    elif argv[1] == "sign":
        json.dump([sign(item) for item in json.load(sys.stdin)], sys.stdout)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
