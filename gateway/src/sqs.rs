//! SQS triggers in the gateway (local mode): pollers run in this process, following the
//! registry, and call functions through [`PlatformTarget`] like any HTTP request.

use std::sync::Arc;

use faas_api::Function;
use faas_sqs::aws_credentials::CredentialPolicy;
use faas_sqs::redrive::{RedriveError, Redriven, redrive_trigger, triggers_to_redrive};
use faas_sqs::{Clients, Pollers, ReadAs, SqsMetrics, Wanted, triggers_of};

use crate::error::StartError;
use crate::host::TriggerCredentials;
use crate::platform::Platform;
use crate::target::PlatformTarget;

/// Starts the pollers of `platform`. AWS configuration (credentials, region, endpoint) is
/// read from the environment the first time a trigger needs it; never from instance metadata
/// unless `FAAS_ALLOW_IMDS_CREDENTIALS=true` (see [`faas_sqs::aws_credentials`]).
pub fn start(platform: &Arc<Platform>, local_port: u16) -> Result<Arc<Pollers>, StartError> {
    let metrics = SqsMetrics::new(platform.metrics.registry())?;
    let pollers = Arc::new(Pollers::new(
        Arc::new(Clients::with_policy(CredentialPolicy::from_env_in(
            platform.config.host.aws,
        ))),
        Arc::new(PlatformTarget::new(platform, local_port)),
        metrics,
    ));
    if platform.sqs.set(Arc::clone(&pollers)).is_err() {
        return Err(StartError::AlreadyStarted("the SQS pollers"));
    }
    // The full set of triggers after every registry change.
    let fed = Arc::clone(&pollers);
    crate::platform::follow_registry(platform, move |platform| fed.set(wanted(platform)));
    Ok(pollers)
}

fn wanted(platform: &Platform) -> Vec<Wanted> {
    let mut wanted = Vec::new();
    for entry in platform.registry.list() {
        let ready = match &entry.state {
            Ok(_) => Ok(()),
            Err(reason) => Err(format!("the function is not ready: {reason}")),
        };
        let read_as = read_as(platform, &entry.function);
        for trigger in triggers_of(&entry.function) {
            match trigger {
                Ok(config) => wanted.push(Wanted {
                    config,
                    function_ready: ready.clone(),
                    read_as: read_as.clone(),
                }),
                // Validation rejects these before a function is registered.
                Err(err) => {
                    tracing::warn!(function = %entry.name(), error = %err, "sqs: trigger ignored")
                }
            }
        }
    }
    wanted
}

/// Whose credentials `function`'s queues are read with here (the host decides).
fn read_as(platform: &Platform, function: &Function) -> ReadAs {
    let how = platform.config.host.triggers_read_as;
    if how == TriggerCredentials::Process {
        return ReadAs::Process;
    }
    let own = platform
        .identities
        .get()
        .and_then(|identities| identities.queue_clients(function));
    match (own, how) {
        (Some(clients), _) => ReadAs::Function(clients),
        (None, TriggerCredentials::RoleOnly) => ReadAs::Nothing(
            "the function has no IAM role (spec.iam.roleArn): a runtime pool reads each \
             member's queues with the member's own role, never with its own identity"
                .to_owned(),
        ),
        (None, _) => ReadAs::Process,
    }
}

/// The triggers of `name` as JSON, for the function's detail.
pub fn status_json(platform: &Platform, name: &str) -> serde_json::Value {
    let statuses = platform
        .sqs
        .get()
        .map(|p| p.status_of(name))
        .unwrap_or_default();
    serde_json::to_value(statuses).unwrap_or_default()
}

/// Every SQS trigger of the platform, each with its function, as JSON.
pub fn all_json(platform: &Platform) -> serde_json::Value {
    let all: Vec<serde_json::Value> = platform
        .sqs
        .get()
        .map(|p| p.statuses())
        .unwrap_or_default()
        .into_iter()
        .map(|(function, status)| {
            let mut value = serde_json::to_value(status).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.insert("function".into(), function.into());
            }
            value
        })
        .collect();
    serde_json::Value::Array(all)
}

/// Moves the messages of the dead-letter queue of each SQS trigger of `entry`'s function
/// (only the one on `queue` when given) back to the trigger's queue, with the credentials its
/// poller reads the queue with ([`read_as`]). `Err(Ok(why))`: the function's queues are not
/// read here at all.
pub async fn redrive(
    platform: &Platform,
    function: &Function,
    queue: Option<&str>,
) -> Result<Vec<Redriven>, Result<String, RedriveError>> {
    let triggers = triggers_to_redrive(function, queue).map_err(Err)?;
    let clients = match read_as(platform, function) {
        ReadAs::Function(clients) => clients,
        ReadAs::Process => match platform.sqs.get() {
            Some(pollers) => pollers.process_clients(),
            None => Arc::new(Clients::with_policy(CredentialPolicy::from_env_in(
                platform.config.host.aws,
            ))),
        },
        ReadAs::Nothing(why) => return Err(Ok(why)),
    };
    let mut done = Vec::new();
    for trigger in &triggers {
        done.push(redrive_trigger(&clients, trigger).await.map_err(Err)?);
    }
    Ok(done)
}
