//! `faas list`, `describe`, `delete` and `runs` against a cluster: what the Function and
//! FunctionRun resources say, in tables a person reads (or `-o json|yaml`).

use faas_api::{Function, FunctionRun};
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde_json::json;

use super::condition;
use crate::Output;
use crate::commands::print_value;
use crate::target::{Cluster, explain};

pub async fn list(cluster: &Cluster, output: Output) -> anyhow::Result<()> {
    let functions = cluster
        .functions()
        .list(&ListParams::default())
        .await
        .map_err(|e| explain(e, &format!("listing Functions in {}", cluster.namespace)))?
        .items;
    if output != Output::Table {
        return print_value(&serde_json::to_value(&functions)?, output);
    }
    if functions.is_empty() {
        eprintln!("no Functions in namespace {}", cluster.namespace);
        return Ok(());
    }
    println!(
        "{:<24} {:<15} {:<6} {:<9} {:<40} REASON",
        "NAME", "RUNTIME", "READY", "REPLICAS", "URL"
    );
    for function in &functions {
        let status = function.status.as_ref();
        let ready = condition(function, "Ready");
        let replicas = format!(
            "{}/{}",
            status.and_then(|s| s.ready_replicas).unwrap_or(0),
            status.and_then(|s| s.replicas).unwrap_or(0)
        );
        println!(
            "{:<24} {:<15} {:<6} {:<9} {:<40} {}",
            function.metadata.name.as_deref().unwrap_or("-"),
            status.and_then(|s| s.runtime.as_deref()).unwrap_or("-"),
            ready.map(|c| c.status.as_str()).unwrap_or("Unknown"),
            replicas,
            status.and_then(|s| s.url.as_deref()).unwrap_or("-"),
            match ready {
                Some(c) if c.status != "True" => c.reason.as_deref().unwrap_or("-"),
                _ => "",
            }
        );
    }
    Ok(())
}

pub async fn describe(cluster: &Cluster, name: &str, output: Output) -> anyhow::Result<()> {
    let function = get(cluster, name).await?;
    let runs = recent_runs(cluster, Some(name), None, None, 5).await?;
    if output != Output::Table {
        return print_value(&json!({"function": function, "recentRuns": runs}), output);
    }
    let spec = &function.spec;
    let status = function.status.as_ref();
    println!("Name:        {name}");
    println!("Namespace:   {}", cluster.namespace);
    if let Some(wasm) = &spec.runtime.wasm {
        println!("Runtime:     wasm, {}", wasm.source);
        if let Some(sha) = &wasm.sha256 {
            println!("SHA256:      {sha}");
        }
    }
    if let Some(container) = &spec.runtime.container {
        println!(
            "Runtime:     container ({:?}), {}",
            container.mode,
            container.image.as_deref().unwrap_or("-")
        );
    }
    if let Some(pool) = status.and_then(|s| s.pool.as_deref()) {
        println!("Pool:        {pool}");
    }
    println!(
        "URL:         {}",
        status
            .and_then(|s| s.url.as_deref())
            .unwrap_or("- (not public)")
    );
    println!(
        "Replicas:    {} ready of {}",
        status.and_then(|s| s.ready_replicas).unwrap_or(0),
        status.and_then(|s| s.replicas).unwrap_or(0)
    );
    if let Some(role) = spec.iam.as_ref().map(|i| i.role_arn.as_str()) {
        println!("IAM role:    {role}");
    }
    for sqs in spec.triggers.iter().flat_map(|t| &t.sqs) {
        println!("SQS:         {}", sqs.queue_url);
    }
    if !spec.schedules.is_empty() {
        println!("Schedules:");
        let now = jiff::Timestamp::now();
        for schedule in &spec.schedules {
            let zone = schedule.time_zone.as_deref().unwrap_or("UTC");
            let next = crate::schedules::next_fire(&schedule.cron, zone, now)
                .unwrap_or_else(|why| format!("invalid: {why}"));
            let last = status
                .and_then(|s| s.last_schedules.get(&schedule.name))
                .map(String::as_str)
                .unwrap_or("never");
            println!(
                "  {:<16} {:<18} {:<16} next {next}; last {last}{}",
                schedule.name,
                schedule.cron,
                zone,
                if schedule.suspend { " (suspended)" } else { "" }
            );
        }
    }
    println!("Conditions:");
    for c in status.map(|s| s.conditions.as_slice()).unwrap_or_default() {
        println!(
            "  {:<17} {:<7} {:<24} {}",
            c.type_,
            c.status,
            c.reason.as_deref().unwrap_or("-"),
            c.message.as_deref().unwrap_or("")
        );
    }
    let loads = status.map(|s| &s.load_state);
    if let Some(loads) = loads.filter(|l| !l.is_empty()) {
        println!("Pool pods:");
        for (pod, state) in loads {
            println!(
                "  {pod:<40} {}",
                if state.loaded {
                    "loaded".to_owned()
                } else {
                    format!("not loaded: {}", state.reason.as_deref().unwrap_or("-"))
                }
            );
        }
    }
    if !runs.is_empty() {
        println!("Recent runs:");
        print_runs(&runs, "  ");
    }
    let events = function_events(cluster, name, 10).await;
    if !events.is_empty() {
        println!("Events:");
        for e in &events {
            println!(
                "  {:<8} {:<24} {}",
                e.type_.as_deref().unwrap_or("Normal"),
                e.reason.as_deref().unwrap_or("-"),
                e.message.as_deref().unwrap_or("").trim()
            );
        }
    }
    Ok(())
}

/// The Function's last `last` Events, oldest first (none when there are none or they cannot
/// be read: they only ever decorate another answer).
pub async fn function_events(cluster: &Cluster, name: &str, last: usize) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let selector = format!("involvedObject.kind=Function,involvedObject.name={name}");
    let Ok(list) = events.list(&ListParams::default().fields(&selector)).await else {
        return Vec::new();
    };
    let mut items = list.items;
    items.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
    });
    let skip = items.len().saturating_sub(last);
    items.split_off(skip)
}

pub async fn get(cluster: &Cluster, name: &str) -> anyhow::Result<Function> {
    cluster
        .functions()
        .get_opt(name)
        .await
        .map_err(|e| explain(e, &format!("reading Function {name}")))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "Function {name} not found in namespace {} (context {}); hint: `faas list` shows what is there",
                cluster.namespace,
                cluster.context
            )
        })
}

pub async fn delete(cluster: &Cluster, name: &str) -> anyhow::Result<()> {
    match cluster
        .functions()
        .delete(name, &DeleteParams::foreground())
        .await
    {
        Ok(_) => {
            println!("{name} deleted (the controller removes its workload and artifacts)");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => anyhow::bail!(
            "Function {name} not found in namespace {}; nothing deleted",
            cluster.namespace
        ),
        Err(e) => Err(explain(e, &format!("deleting Function {name}"))),
    }
}

/// Runs of the namespace (of one function, schedule or phase), newest first.
pub async fn recent_runs(
    cluster: &Cluster,
    function: Option<&str>,
    schedule: Option<&str>,
    phase: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<FunctionRun>> {
    let runs: Api<FunctionRun> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut params = ListParams::default();
    if let Some(function) = function {
        params = params.labels(&format!("faas.dev/function={function}"));
    }
    let mut items = runs
        .list(&params)
        .await
        .map_err(|e| explain(e, "listing FunctionRuns"))?
        .items;
    items.retain(|run| {
        schedule.is_none_or(|s| run.spec.schedule == s)
            && phase.is_none_or(|p| {
                run.status
                    .as_ref()
                    .is_some_and(|st| st.phase.as_str().eq_ignore_ascii_case(p))
            })
    });
    items.sort_by_key(|run| std::cmp::Reverse(created(run)));
    items.truncate(limit);
    Ok(items)
}

fn created(run: &FunctionRun) -> Option<jiff::Timestamp> {
    run.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

pub async fn runs(
    cluster: &Cluster,
    function: Option<&str>,
    schedule: Option<&str>,
    phase: Option<&str>,
    limit: usize,
    output: Output,
) -> anyhow::Result<()> {
    let runs = recent_runs(cluster, function, schedule, phase, limit).await?;
    if output != Output::Table {
        return print_value(&serde_json::to_value(&runs)?, output);
    }
    if runs.is_empty() {
        eprintln!("no runs in namespace {}", cluster.namespace);
        return Ok(());
    }
    print_runs(&runs, "");
    Ok(())
}

fn print_runs(runs: &[FunctionRun], indent: &str) {
    println!(
        "{indent}{:<36} {:<20} {:<14} {:<11} {:<26} STATUS",
        "RUN", "FUNCTION", "SCHEDULE", "PHASE", "STARTED"
    );
    for run in runs {
        let status = run.status.as_ref();
        println!(
            "{indent}{:<36} {:<20} {:<14} {:<11} {:<26} {}",
            run.metadata.name.as_deref().unwrap_or("-"),
            run.spec.function,
            run.spec.schedule,
            status.map(|s| s.phase.as_str()).unwrap_or("Pending"),
            status.and_then(|s| s.start_time.as_deref()).unwrap_or("-"),
            status
                .and_then(|s| s.http_status)
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into())
        );
    }
}

/// `faas runs show ID`: one run's times, phase, status, output and log tail.
pub async fn show_run(cluster: &Cluster, id: &str, output: Output) -> anyhow::Result<()> {
    let runs: Api<FunctionRun> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let run = runs
        .get_opt(id)
        .await
        .map_err(|e| explain(e, &format!("reading FunctionRun {id}")))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "run {id} not found in namespace {}; hint: `faas runs` lists them (history is pruned per schedule)",
                cluster.namespace
            )
        })?;
    if output != Output::Table {
        return print_value(&serde_json::to_value(&run)?, output);
    }
    let status = run.status.clone().unwrap_or_default();
    println!("Run:        {id}");
    println!("Function:   {}", run.spec.function);
    println!("Schedule:   {} ({})", run.spec.schedule, run.spec.trigger);
    if let Some(at) = &run.spec.scheduled_time {
        println!("Scheduled:  {at}");
    }
    println!(
        "Started:    {}",
        status.start_time.as_deref().unwrap_or("-")
    );
    println!("Ended:      {}", status.end_time.as_deref().unwrap_or("-"));
    println!("Attempt:    {}", run.spec.attempt);
    println!("Phase:      {}", status.phase.as_str());
    if let Some(code) = status.http_status {
        println!("Status:     {code}");
    }
    if let Some(message) = &status.message {
        println!("Message:    {message}");
    }
    if let Some(out) = &status.output {
        println!("Output:\n{out}");
    }
    if let Some(tail) = &status.log_tail {
        println!("Log tail:\n{tail}");
    }
    Ok(())
}
