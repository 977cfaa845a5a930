#!/usr/bin/env bash
# Sets up a fresh machine and runs the local platform serving the examples on 127.0.0.1:8080,
# with a local SQS-protocol server (moto) on 127.0.0.1:4566 holding the queue `jobs` (and its
# DLQ `jobs-dlq`) that the sqs-consumer example is triggered by, and the bucket `inbox` (with
# `hello.txt`) and queue `outbox` the aws-s3-sqs example copies between, with its own role.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 wasm32-wasip1
command -v moto_server >/dev/null || python3 -m pip install --quiet 'moto[server]>=5.1,<6'
cargo build --release --locked -p faas-cli
(cd examples && cargo build --locked -p lambda-rust)

moto_server -H 127.0.0.1 -p 4566 >/tmp/faas-moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null' EXIT

# The SDK's standard variables: SQS and STS (functions' roles are assumed there) go to the local
# server, with test credentials.
export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:4566 AWS_ENDPOINT_URL_STS=http://127.0.0.1:4566
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true
python3 - <<'PY'
import json, time, boto3
sqs = boto3.client("sqs", endpoint_url="http://127.0.0.1:4566", region_name="us-east-1")
for _ in range(100):
    try:
        dlq = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
        break
    except Exception:
        time.sleep(0.1)
arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sqs.create_queue(QueueName="jobs", Attributes={
    "VisibilityTimeout": "30",
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"}),
})
sqs.create_queue(QueueName="outbox")
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:4566", region_name="us-east-1")
s3.create_bucket(Bucket="inbox")
s3.put_object(Bucket="inbox", Key="hello.txt", Body=b"hello from S3\n")
print("up.sh: local SQS and S3 on http://127.0.0.1:4566: queues jobs, jobs-dlq, outbox; bucket inbox")
PY
target/release/faas up examples "$@"
