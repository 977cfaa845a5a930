//! SQS triggers in a cluster, with and without KEDA.

use std::time::Duration;

use super::{Cluster, condition, deploy, get, http_function, http_image, object, replicas, until};

/// An SQS-triggered container function in a cluster without KEDA: the controller keeps a
/// replica (its sidecar is the poller), which drains a queue into the function, and the
/// Function's status says a poller is ready.
pub async fn without_keda_a_poller_drains_the_queue<C: Cluster>(c: &C) {
    let Some(image) = http_image(c) else { return };
    let keda = object(
        c,
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "",
        "scaledobjects.keda.sh",
    )
    .await;
    if !c.meets(keda.is_none(), "a cluster without KEDA") {
        return;
    }
    let queue = c.queue().await;
    if !c.meets(
        queue.is_some(),
        "an SQS queue the function pods can read (FAAS_E2E_SQS_QUEUE_URL)",
    ) {
        return;
    }
    let Some((sqs, queue)) = queue else { return };
    let (public, _) = super::gateway(c).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let team = c.team();
    let spec = format!("  scale: {{min: 0}}\n  triggers:\n    sqs:\n    - queueUrl: {queue}\n");
    deploy(
        c,
        dir.path(),
        &http_function("orders", &image, 18093, &spec),
        &[],
    );
    // scale.min 0, yet one replica: nothing else would start a poller.
    assert_eq!(replicas(c, team, "fn-orders").await, Some(1));
    for n in 0..10 {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(format!("{{\"n\": {n}}}"))
            .send()
            .await
            .expect("send a message");
    }
    // Each POST is one SQS event of up to ten records, each body a JSON string in it; the
    // function answers what it received (one replica: the poller's).
    let record = |n: u32| format!("\\\"n\\\": {n}");
    until(
        c,
        "ten messages delivered",
        Duration::from_secs(60),
        || async {
            let (_, received) = get(&format!("{public}/function/orders/received")).await;
            (0..10).all(|n| received.contains(&record(n))).then_some(())
        },
    )
    .await;
    // Deleted once the function answered 200: nothing visible, nothing in flight.
    until(c, "the queue is empty", Duration::from_secs(30), || async {
        use aws_sdk_sqs::types::QueueAttributeName as Name;
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(Name::All)
            .send()
            .await
            .expect("read the queue's attributes");
        let count = |name: Name| {
            attributes
                .attributes()
                .and_then(|a| a.get(&name).cloned())
                .unwrap_or_default()
        };
        (count(Name::ApproximateNumberOfMessages) == "0"
            && count(Name::ApproximateNumberOfMessagesNotVisible) == "0")
            .then_some(())
    })
    .await;
    let function = object(c, "faas.dev", "functions", team, "orders")
        .await
        .expect("the Function");
    let triggers = condition(&function, "TriggersReady")
        .cloned()
        .unwrap_or_default();
    assert_eq!(triggers["status"], "True", "{function}");
}

/// With KEDA installed, an SQS function's replicas are KEDA's: the controller renders the
/// ScaledObject docs/eks.md describes (from scale.min, activation on the first message, up to
/// scale.max, one trigger per queue read with the workload's identity) and leaves the
/// Deployment's replicas alone.
pub async fn with_keda_the_scaled_object_is_what_the_docs_describe<C: Cluster>(c: &C) {
    let Some(image) = http_image(c) else { return };
    let keda = object(
        c,
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "",
        "scaledobjects.keda.sh",
    )
    .await;
    if !c.meets(keda.is_some(), "KEDA installed (its CRDs)") {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let team = c.team();
    let queue = "https://sqs.eu-west-3.amazonaws.com/123456789012/orders";
    let spec = format!(
        "  scale: {{min: 0, max: 4}}\n  triggers:\n    sqs:\n    - queueUrl: {queue}\n      \
         batchSize: 5\n      maxConcurrency: 2\n"
    );
    // Not waited for: the queue is not reachable, so no poller turns ready.
    deploy(
        c,
        dir.path(),
        &http_function("orders", &image, 18094, &spec),
        &["--no-wait"],
    );
    let scaled = until(c, "a ScaledObject", Duration::from_secs(30), || async {
        object(c, "keda.sh", "scaledobjects", team, "fn-orders").await
    })
    .await;
    let spec = &scaled["spec"];
    assert_eq!(spec["scaleTargetRef"]["name"], "fn-orders", "{scaled}");
    assert_eq!(spec["minReplicaCount"], 0, "{scaled}");
    assert_eq!(spec["maxReplicaCount"], 4, "{scaled}");
    let triggers = spec["triggers"].as_array().expect("triggers");
    assert_eq!(triggers.len(), 1, "{scaled}");
    assert_eq!(triggers[0]["type"], "aws-sqs-queue");
    assert_eq!(triggers[0]["metadata"]["queueURL"], queue);
    assert_eq!(triggers[0]["metadata"]["activationQueueLength"], "0");
    // batch size x maxConcurrency messages per replica.
    assert_eq!(triggers[0]["metadata"]["queueLength"], "10");
    let auth = triggers[0]["authenticationRef"]["name"]
        .as_str()
        .expect("an authenticationRef");
    let auth = object(c, "keda.sh", "triggerauthentications", team, auth)
        .await
        .expect("its TriggerAuthentication");
    assert_eq!(auth["spec"]["podIdentity"]["provider"], "aws", "{auth}");
    assert_eq!(
        auth["spec"]["podIdentity"]["identityOwner"], "workload",
        "{auth}"
    );
    // KEDA owns replicas: the controller's apply leaves them out. Where no KEDA operator
    // acts (the stand-in has only its CRDs), the API's default of one stays (the controller
    // would have written scale.min, 0).
    if !c.keda_acts() {
        assert_eq!(replicas(c, team, "fn-orders").await, Some(1));
    }
}
