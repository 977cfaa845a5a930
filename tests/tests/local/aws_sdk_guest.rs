//! The AWS SDK for Rust inside a function (`examples/aws-s3-sqs`, `faas_sdk::aws::config()`),
//! under `faas up` against moto: with its own role's credentials it reads an S3 object and
//! sends it to an SQS queue; a missing object is a 404; without a role the SDK finds no
//! credentials (and never the platform's own); without an allowlist entry the host refuses its
//! requests. Only the first call sends a message.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use faas_e2e::moto::moto;
use faas_e2e::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/team-a/copier";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_sdk_example_copies_an_s3_object_to_sqs_with_its_own_role() {
    let moto = moto();
    let tag = std::process::id();
    let bucket = format!("inbox-{tag}");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.sdk_config())
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create the bucket");
    s3.put_object()
        .bucket(&bucket)
        .key("report.txt")
        .body(ByteStream::from_static(b"quarterly numbers\n"))
        .send()
        .await
        .expect("put the object");
    let queue = moto.create_queue(&format!("outbox-{tag}"), &[]).await;

    let dir = tempfile::tempdir().unwrap();
    let endpoint = &moto.endpoint;
    let iam = format!("  iam: {{roleArn: \"{ROLE}\"}}\n");
    let env = format!(
        "  timeout: 30s\n  env:\n    BUCKET: {bucket}\n    QUEUE_URL: {queue}\n    AWS_ENDPOINT_URL: {endpoint}\n"
    );
    let allowed = format!("  network:\n    allowedOutboundHosts: [\"{endpoint}\"]\n");
    let guest = guest("aws-s3-sqs");
    write_function(
        dir.path(),
        "copier",
        &guest,
        &format!("{iam}{env}{allowed}"),
    );
    // (A function without a role gets no AWS_REGION either: this one names its own.)
    let region = "    AWS_REGION: us-east-1\n";
    write_function(
        dir.path(),
        "no-role",
        &guest,
        &format!("{env}{region}{allowed}"),
    );
    write_function(dir.path(), "sealed", &guest, &format!("{iam}{env}"));
    let faas = Faas::launch(
        dir.path(),
        Launch {
            env: moto.env(),
            ..Launch::default()
        },
    );

    let copied = get(&faas.url("/function/copier/report.txt")).await;
    assert_eq!(copied.status, 200, "{}", copied.text());
    let expected = format!("sent s3://{bucket}/report.txt (18 bytes) to {queue} as message ");
    assert!(copied.text().starts_with(&expected), "{}", copied.text());
    assert_eq!(
        moto.receive_bodies(&queue, Duration::from_secs(5)).await,
        ["quarterly numbers\n"]
    );

    let missing = get(&faas.url("/function/copier/absent.txt")).await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(missing.text().contains("NoSuchKey"), "{}", missing.text());

    // No role: the SDK's own error, and the platform's credentials ("testing") never reach it.
    let no_role = get(&faas.url("/function/no-role/report.txt")).await;
    assert_eq!(no_role.status, 502, "{}", no_role.text());
    assert!(
        no_role.text().contains("s3 GetObject") && no_role.text().contains("credentials"),
        "{}",
        no_role.text()
    );

    // Its endpoint not allowed: the host refuses the request before any connection.
    let sealed = get(&faas.url("/function/sealed/report.txt")).await;
    assert_eq!(sealed.status, 502, "{}", sealed.text());
    assert!(
        sealed.text().contains("HttpRequestDenied"),
        "{}",
        sealed.text()
    );

    assert_eq!(
        moto.receive_bodies(&queue, Duration::from_secs(1)).await,
        Vec::<String>::new(),
        "only the first call sent a message"
    );
}
