//! Validation of a [`Function`]: every rule the platform relies on, checked before anything is
//! applied or served.
//!
//! [`validate`] collects *all* problems at once, each naming the full field path as a user wrote
//! it in YAML (`spec.schedules[0].cron`, `spec.triggers.sqs[1].batchSize`), so one round trip is
//! enough to fix a manifest.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::cron::CronSchedule;
use crate::function::{
    ContainerMode, ContainerRuntime, Function, FunctionSpec, HttpSpec, IamSpec, PlacementSpec,
    ScaleSpec, Schedule, SqsTrigger, WasmRuntime,
};
use crate::limits::parse_duration;
use crate::network;

/// Largest `spec.scale.max`.
pub const MAX_SCALE: u32 = 1000;
/// Largest `spec.schedules[].retries.limit`.
pub const MAX_RETRIES: u32 = 10;
/// Largest SQS batch size for FIFO queues, or without a batch window.
pub const SQS_MAX_BATCH: u32 = 10;
/// Largest SQS batch size for standard queues with `batchWindow >= 1s`.
pub const SQS_MAX_BATCH_WITH_WINDOW: u32 = 10_000;
/// Largest SQS batch window.
pub const SQS_MAX_BATCH_WINDOW: Duration = Duration::from_secs(300);
/// Largest `maxConcurrency` of an SQS trigger.
pub const SQS_MAX_CONCURRENCY: u32 = 1000;

/// HTTP path prefixes the gateway keeps for itself; `spec.http.path` may not fall under them.
/// The one list, shared with routing: [`crate::routing::RESERVED_PATHS`].
pub const RESERVED_PATH_PREFIXES: &[&str] = crate::routing::RESERVED_PATHS;

/// One problem in a manifest, with the field it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Full field path as written in YAML, e.g. `spec.schedules[0].cron`.
    pub path: String,
    /// What is wrong, including the offending value.
    pub message: String,
}

impl FieldError {
    /// A new error about `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one object. Displayed as the errors joined by `"; "`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// The errors, in the order the fields appear in the resource.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds an error about `path`; `message` is a text or a typed error (its one line).
    pub fn push(&mut self, path: impl Into<String>, message: impl fmt::Display) {
        self.0.push(FieldError::new(path, message.to_string()));
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl IntoIterator for ValidationErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<FieldError> for ValidationErrors {
    fn from(e: FieldError) -> Self {
        ValidationErrors(vec![e])
    }
}

/// Checks every rule on `f` and returns all violations at once.
pub fn validate(f: &Function) -> Result<(), ValidationErrors> {
    let mut errs = ValidationErrors::default();

    match f.metadata.name.as_deref() {
        None | Some("") => errs.push("metadata.name", "is required"),
        Some(name) => {
            if let Err(m) = check_dns_label(name) {
                errs.push("metadata.name", m);
            }
        }
    }
    if let Some(ns) = f.metadata.namespace.as_deref()
        && let Err(m) = check_dns_label(ns)
    {
        errs.push("metadata.namespace", m);
    }

    validate_spec(&f.spec, &mut errs);
    let own_name = f.metadata.name.as_deref();
    if let Some(then) = &f.spec.then {
        crate::chain::validate(then, "spec.then", own_name, &mut errs);
    }
    for (i, schedule) in f.spec.schedules.iter().enumerate() {
        if let Some(then) = &schedule.then {
            crate::chain::validate(
                then,
                &format!("spec.schedules[{i}].then"),
                own_name,
                &mut errs,
            );
        }
    }
    errs.into_result()
}

fn validate_spec(spec: &FunctionSpec, errs: &mut ValidationErrors) {
    match (&spec.runtime.wasm, &spec.runtime.container) {
        (Some(w), None) => validate_wasm(w, errs),
        (None, Some(c)) => validate_container(c, errs),
        _ => errs.push(
            "spec.runtime",
            "exactly one of wasm or container must be set",
        ),
    }

    // timeout, memory, concurrency, http.maxBodySize: the same code that computes them.
    spec.collect_limits(errs);

    if let Some(scale) = &spec.scale {
        validate_scale(scale, errs);
    }
    if let Some(cpu) = &spec.cpu
        && let Err(m) = check_cpu(cpu)
    {
        errs.push("spec.cpu", m);
    }
    validate_env(&spec.env, errs);
    if let Some(iam) = &spec.iam {
        validate_iam(iam, errs);
    }
    if let Some(net) = &spec.network
        && let Err(e) = network::OutboundPolicy::from_spec(&net.allowed_outbound_hosts)
    {
        errs.0.extend(e.0);
    }
    if let Some(p) = &spec.placement {
        validate_placement(p, errs);
    }
    if let Some(http) = &spec.http {
        validate_http(http, errs);
    }
    validate_schedules(&spec.schedules, errs);
    if let Some(t) = &spec.triggers {
        validate_sqs(&t.sqs, errs);
    }
    crate::options::validate(&spec.options, &spec.schedules, errs);
    if let Some(webhook) = &spec.webhook {
        validate_webhook(webhook, spec, errs);
    }
    if spec
        .runtime
        .container
        .as_ref()
        .is_some_and(|c| c.mode == ContainerMode::Job)
    {
        validate_job(spec, errs);
    }
}

/// `mode: job`: a process that runs once per run, so nothing about serving requests applies.
fn validate_job(spec: &FunctionSpec, errs: &mut ValidationErrors) {
    if spec
        .runtime
        .container
        .as_ref()
        .is_some_and(|c| c.port.is_some())
    {
        errs.push(
            "spec.runtime.container.port",
            "a job has no server to reach (mode: job runs once per run, without HTTP)",
        );
    }
    if let Some(http) = &spec.http {
        if http.path.is_some() {
            errs.push(
                "spec.http.path",
                "a job is not called over HTTP: it runs by its schedules, `faas run` or the runs API",
            );
        }
        if !http.hosts.is_empty() {
            errs.push(
                "spec.http.hosts",
                "a job is not called over HTTP: it runs by its schedules, `faas run` or the runs API",
            );
        }
    }
    if spec.scale.is_some() {
        errs.push(
            "spec.scale",
            "a job has no replicas: each run is its own process (a Kubernetes Job in a cluster)",
        );
    }
    if !spec.sqs_triggers().is_empty() {
        errs.push(
            "spec.triggers.sqs",
            "a job takes no SQS trigger: use mode: lambda or http for a queue's messages",
        );
    }
}

fn validate_wasm(w: &WasmRuntime, errs: &mut ValidationErrors) {
    if let Err(why) = crate::artifact::ArtifactSource::parse(&w.source) {
        errs.push("spec.runtime.wasm.source", why.to_string());
    }
    if let Some(sha) = &w.sha256
        && !crate::artifact::is_sha256_hex(sha)
    {
        errs.push(
            "spec.runtime.wasm.sha256",
            format!("must be 64 hexadecimal characters, got {sha:?}"),
        );
    }
    for (i, d) in w.dirs.iter().enumerate() {
        if d.host_path.trim().is_empty() {
            errs.push(
                format!("spec.runtime.wasm.dirs[{i}].hostPath"),
                "must not be empty",
            );
        }
        if !d.guest_path.starts_with('/') {
            errs.push(
                format!("spec.runtime.wasm.dirs[{i}].guestPath"),
                format!("must be an absolute path, got {:?}", d.guest_path),
            );
        }
    }
}

fn validate_container(c: &ContainerRuntime, errs: &mut ValidationErrors) {
    if let Some(path) = &c.readiness_path {
        if !path.starts_with('/') || path.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            errs.push(
                "spec.runtime.container.readinessPath",
                format!("must be an absolute path without spaces (/healthz), got {path:?}"),
            );
        }
        if c.mode != ContainerMode::Http {
            errs.push(
                "spec.runtime.container.readinessPath",
                "only http mode has a server to probe",
            );
        }
    }
    let has_image = c.image.as_deref().is_some_and(|s| !s.trim().is_empty());
    if !has_image && c.command.is_empty() {
        errs.push(
            "spec.runtime.container",
            "one of image or command must be set",
        );
    }
    if c.image.as_deref().is_some_and(|s| s.trim().is_empty()) {
        errs.push("spec.runtime.container.image", "must not be empty when set");
    }
    match (c.mode, c.port) {
        (_, Some(0)) => errs.push(
            "spec.runtime.container.port",
            "must be between 1 and 65535, got 0",
        ),
        (ContainerMode::Http, None) => errs.push(
            "spec.runtime.container.port",
            "is required in http mode (the port the container listens on)",
        ),
        _ => {}
    }
}

fn validate_scale(s: &ScaleSpec, errs: &mut ValidationErrors) {
    if let Some(idle) = &s.idle_after {
        match crate::limits::parse_duration(idle) {
            Err(m) => errs.push("spec.scale.idleAfter", m),
            Ok(d) if d < crate::scaling::MIN_IDLE_AFTER => errs.push(
                "spec.scale.idleAfter",
                format!(
                    "must be at least {} (a shorter idle time would stop replicas between \
                     ordinary requests), got {idle:?}",
                    humantime::format_duration(crate::scaling::MIN_IDLE_AFTER)
                ),
            ),
            Ok(_) => {}
        }
    }
    if s.min > MAX_SCALE {
        errs.push(
            "spec.scale.min",
            format!("must be at most {MAX_SCALE}, got {}", s.min),
        );
    }
    if let Some(max) = s.max {
        if !(1..=MAX_SCALE).contains(&max) {
            errs.push(
                "spec.scale.max",
                format!("must be between 1 and {MAX_SCALE}, got {max}"),
            );
        }
        if s.min > max {
            errs.push(
                "spec.scale.min",
                format!(
                    "must not be greater than spec.scale.max ({} > {max})",
                    s.min
                ),
            );
        }
    }
}

fn validate_iam(iam: &IamSpec, errs: &mut ValidationErrors) {
    if let Err(m) = check_role_arn(&iam.role_arn) {
        errs.push("spec.iam.roleArn", m);
    }
}

/// A CPU quantity: millicores (`250m`) or cores (`1`, `0.5`), more than zero.
fn check_cpu(s: &str) -> Result<(), String> {
    let (number, milli) = match s.strip_suffix('m') {
        Some(n) => (n, true),
        None => (s, false),
    };
    let valid = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1
        && !(milli && number.contains('.'));
    match number.parse::<f64>() {
        Ok(v) if valid && v > 0.0 => Ok(()),
        _ => Err(format!(
            "must be a CPU quantity such as 250m or 1 (more than zero), got {s:?}"
        )),
    }
}

fn validate_placement(p: &PlacementSpec, errs: &mut ValidationErrors) {
    for (i, t) in p.tolerations.iter().enumerate() {
        let path = format!("spec.placement.tolerations[{i}]");
        let operator = t.operator.as_deref().unwrap_or("Equal");
        if !matches!(operator, "Equal" | "Exists") {
            errs.push(
                format!("{path}.operator"),
                format!("must be Equal or Exists, got {operator:?}"),
            );
        }
        if operator == "Exists" && t.value.as_deref().is_some_and(|v| !v.is_empty()) {
            errs.push(
                format!("{path}.value"),
                "must be empty with operator Exists",
            );
        }
        if let Some(effect) = &t.effect
            && !matches!(
                effect.as_str(),
                "NoSchedule" | "PreferNoSchedule" | "NoExecute"
            )
        {
            errs.push(
                format!("{path}.effect"),
                format!("must be NoSchedule, PreferNoSchedule or NoExecute, got {effect:?}"),
            );
        }
        check_toleration_key(&t.key, &path, errs);
    }
    for (key, value) in &p.node_selector {
        if !is_label_value(value) {
            errs.push(
                format!("spec.placement.nodeSelector.{key}"),
                format!("must be a Kubernetes label value, got {value:?}"),
            );
        }
    }
    if let Some(sg) = &p.security_group
        && !is_label_value(sg)
    {
        errs.push(
            "spec.placement.securityGroup",
            format!("must be a Kubernetes label value (it becomes a pod label), got {sg:?}"),
        );
    }
    if let Some(pool) = &p.pool
        && let Err(m) = check_dns_label(pool)
    {
        errs.push("spec.placement.pool", m);
    }
    if let Some(ng) = &p.node_group
        && !is_label_value(ng)
    {
        errs.push(
            "spec.placement.nodeGroup",
            format!(
                "must be a Kubernetes label value (letters, digits, '-', '_', '.', \
                 at most 63 chars, starting and ending alphanumeric), got {ng:?}"
            ),
        );
    }
}

/// An empty key is a wildcard: with `Exists` it tolerates every taint, so function pods could
/// land on the system nodes or on another team's dedicated nodes. Always refused.
fn check_toleration_key(key: &str, path: &str, errs: &mut ValidationErrors) {
    if key.is_empty() {
        errs.push(
            format!("{path}.key"),
            "is required: an empty key (with operator Exists) tolerates every taint, \
             including those of nodes functions must not use",
        );
    }
}

fn validate_http(h: &HttpSpec, errs: &mut ValidationErrors) {
    if let Some(path) = &h.path
        && let Err(m) = check_http_path(path)
    {
        errs.push("spec.http.path", m);
    }
    for (i, host) in h.hosts.iter().enumerate() {
        if let Err(m) = check_route_host(host) {
            errs.push(format!("spec.http.hosts[{i}]"), m);
        }
    }
}

fn validate_schedules(schedules: &[Schedule], errs: &mut ValidationErrors) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in schedules.iter().enumerate() {
        let p = format!("spec.schedules[{i}]");
        if s.name.is_empty() {
            errs.push(format!("{p}.name"), "must not be empty");
        } else if let Err(m) = check_dns_label(&s.name) {
            errs.push(format!("{p}.name"), m);
        } else if s.name == "manual" {
            errs.push(
                format!("{p}.name"),
                "\"manual\" is reserved for runs started by hand",
            );
        } else if let Some(&first) = seen.get(s.name.as_str()) {
            errs.push(
                format!("{p}.name"),
                format!(
                    "duplicate schedule name {:?} (also spec.schedules[{first}])",
                    s.name
                ),
            );
        } else {
            seen.insert(&s.name, i);
        }
        // `parse` checks the syntax first, then the meaning (Quartz day-of-week numbering,
        // days that never occur).
        if let Err(m) = CronSchedule::parse(&s.cron) {
            errs.push(format!("{p}.cron"), m);
        }
        if let Some(tz) = &s.time_zone
            && let Err(m) = check_time_zone(tz)
        {
            errs.push(format!("{p}.timeZone"), m);
        }
        if let Some(d) = &s.starting_deadline {
            check_positive_duration(d, &format!("{p}.startingDeadline"), errs);
        }
        if let Some(d) = &s.timeout {
            check_positive_duration(d, &format!("{p}.timeout"), errs);
        }
        if let Some(r) = &s.retries {
            if r.limit > MAX_RETRIES {
                errs.push(
                    format!("{p}.retries.limit"),
                    format!("must be at most {MAX_RETRIES}, got {}", r.limit),
                );
            }
            if let Some(b) = &r.backoff {
                check_positive_duration(b, &format!("{p}.retries.backoff"), errs);
            }
        }
        if let Some(n) = &s.notify {
            match (&n.url_from, n.url.is_empty()) {
                (Some(_), false) => errs.push(
                    format!("{p}.notify.urlFrom"),
                    "set url or urlFrom, not both",
                ),
                (Some(from), true) => validate_source(from, &format!("{p}.notify.urlFrom"), errs),
                (None, _) => {
                    if let Err(m) = check_http_url(&n.url) {
                        errs.push(format!("{p}.notify.url"), m);
                    }
                }
            }
            if let Some(late) = &n.on_late {
                check_positive_duration(late, &format!("{p}.notify.onLate"), errs);
            }
            if let Some(body) = &n.body {
                if let Err(m) = crate::notify::check(body) {
                    errs.push(format!("{p}.notify.body"), m);
                }
                if n.format.is_some() {
                    errs.push(
                        format!("{p}.notify.format"),
                        "a custom body is the body: drop format or body",
                    );
                }
            }
        }
        if let Some(keep) = s.history.as_ref().and_then(|h| h.keep_for.as_deref()) {
            check_positive_duration(keep, &format!("{p}.history.keepFor"), errs);
        }
    }
}

fn validate_sqs(triggers: &[SqsTrigger], errs: &mut ValidationErrors) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, t) in triggers.iter().enumerate() {
        let p = format!("spec.triggers.sqs[{i}]");
        let queue = match crate::sqs::QueueUrl::parse(&t.queue_url) {
            Ok(q) => Some(q),
            Err(m) => {
                errs.push(format!("{p}.queueUrl"), m);
                None
            }
        };
        if let Some(first) = seen.get(t.queue_url.as_str()) {
            errs.push(
                format!("{p}.queueUrl"),
                format!(
                    "queue {:?} already has a trigger (spec.triggers.sqs[{first}])",
                    t.queue_url
                ),
            );
        } else {
            seen.insert(&t.queue_url, i);
        }

        let mut window = Duration::ZERO;
        if let Some(w) = &t.batch_window {
            match parse_duration(w) {
                Ok(d) if d <= SQS_MAX_BATCH_WINDOW => window = d,
                Ok(_) => errs.push(
                    format!("{p}.batchWindow"),
                    format!("must be between 0s and 300s, got {w:?}"),
                ),
                Err(m) => errs.push(format!("{p}.batchWindow"), m),
            }
        }
        if let Some(size) = t.batch_size {
            let fifo = queue.as_ref().is_some_and(|q| q.fifo);
            let max = if !fifo && window >= Duration::from_secs(1) {
                SQS_MAX_BATCH_WITH_WINDOW
            } else {
                SQS_MAX_BATCH
            };
            if size < 1 || size > max {
                errs.push(
                    format!("{p}.batchSize"),
                    format!(
                        "must be between 1 and {SQS_MAX_BATCH} (up to {SQS_MAX_BATCH_WITH_WINDOW} \
                         for standard queues with batchWindow >= 1s), got {size}"
                    ),
                );
            }
        }
        if let Some(c) = t.max_concurrency
            && !(1..=SQS_MAX_CONCURRENCY).contains(&c)
        {
            errs.push(
                format!("{p}.maxConcurrency"),
                format!("must be between 1 and {SQS_MAX_CONCURRENCY}, got {c}"),
            );
        }
        if let Some(criteria) = &t.filter_criteria {
            let max = crate::filter::MAX_FILTERS;
            if criteria.filters.is_empty() || criteria.filters.len() > max {
                errs.push(
                    format!("{p}.filterCriteria.filters"),
                    format!(
                        "must hold 1 to {max} filters, got {}",
                        criteria.filters.len()
                    ),
                );
            }
            for (j, filter) in criteria.filters.iter().enumerate() {
                if let Err(e) = crate::filter::Pattern::parse(&filter.pattern) {
                    errs.push(
                        format!("{p}.filterCriteria.filters[{j}].pattern"),
                        e.to_string(),
                    );
                }
            }
        }
    }
}

fn check_positive_duration(s: &str, path: &str, errs: &mut ValidationErrors) {
    match parse_duration(s) {
        Ok(d) if d.is_zero() => errs.push(path, format!("must be greater than 0, got {s:?}")),
        Ok(_) => {}
        Err(m) => errs.push(path, m),
    }
}

// ---------------------------------------------------------------------------------------------
// Small syntax checks, shared with the other modules of this crate.

/// A DNS-1123 label: lowercase letters, digits, `-`, starting and ending alphanumeric, 1-63 chars.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub fn check_dns_label(s: &str) -> Result<(), String> {
    if is_dns_label(s) {
        Ok(())
    } else {
        Err(format!(
            "must be a DNS-1123 label (lowercase letters, digits, '-', at most 63 chars), got {s:?}"
        ))
    }
}

/// A DNS-1123 subdomain (a Kubernetes object name): lowercase labels joined by dots.
pub(crate) fn check_dns_subdomain(s: &str) -> Result<(), String> {
    if s.len() <= 253 && !s.is_empty() && s.split('.').all(is_dns_label) {
        Ok(())
    } else {
        Err(format!(
            "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.'), got {s:?}"
        ))
    }
}

/// A DNS name (RFC 1123 host name, any case), without trailing dot: labels of letters, digits
/// and `-`, 1-63 chars each, at most 253 chars in all.
pub(crate) fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

pub(crate) fn check_route_host(host: &str) -> Result<(), String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("must be lowercase, got {host:?}"));
    }
    if host.contains(':') {
        return Err(format!(
            "must be a host name without port or scheme, got {host:?}"
        ));
    }
    if !is_dns_name(name) {
        return Err(format!(
            "must be a DNS name (optionally starting with \"*.\"), got {host:?}"
        ));
    }
    // A top-level label of digits only is an IP address's last byte (a pod's, the node's):
    // such a route would capture requests addressed by IP, such as load balancer probes.
    let top = name.rsplit('.').next().unwrap_or(name);
    if top.bytes().all(|b| b.is_ascii_digit()) || name == "localhost" {
        return Err(format!(
            "must be a DNS name, not an IP address or localhost, got {host:?}"
        ));
    }
    Ok(())
}

/// `spec.env`: names, one of a value or a source per entry, and each source's fields (a
/// Secret's name and key become a path under `faas up --secrets`: no separators, no dots).
fn validate_env(env: &crate::Env, errs: &mut ValidationErrors) {
    let mut seen = std::collections::BTreeSet::new();
    for entry in env.entries() {
        let at = format!("spec.env[{:?}]", entry.name);
        if !is_env_name(&entry.name) {
            errs.push(
                at.clone(),
                "environment variable names must match [A-Za-z_][A-Za-z0-9_]*",
            );
        }
        if !seen.insert(entry.name.as_str()) {
            errs.push(at.clone(), "set more than once");
        }
        let Some(from) = &entry.value_from else {
            continue;
        };
        if entry.value.is_some() {
            errs.push(at.clone(), "set value or valueFrom, not both");
        }
        validate_source(from, &format!("{at}.valueFrom"), errs);
    }
}

/// `spec.webhook`: a token from one source, a schedule the function has, options it declares
/// read by JSON pointer.
fn validate_webhook(
    webhook: &crate::WebhookSpec,
    spec: &FunctionSpec,
    errs: &mut ValidationErrors,
) {
    validate_source(&webhook.token_secret, "spec.webhook.tokenSecret", errs);
    if let Some(schedule) = &webhook.schedule
        && !spec.schedules.iter().any(|s| &s.name == schedule)
    {
        errs.push(
            "spec.webhook.schedule",
            format!("the function has no schedule {schedule:?}"),
        );
    }
    for (name, pointer) in &webhook.options_from_body {
        let at = format!("spec.webhook.optionsFromBody.{name}");
        if !spec.options.iter().any(|o| &o.name == name) {
            errs.push(at.clone(), "not an option of the function (spec.options)");
        }
        if !crate::options::is_pointer(pointer) {
            errs.push(
                at,
                format!("{pointer:?} is not a JSON pointer (`/field/0/name`)"),
            );
        }
    }
}

/// A secret's source (`valueFrom` of `spec.env`, `spec.webhook.tokenSecret`) at `at`:
/// exactly one, each well-formed.
fn validate_source(from: &crate::EnvSource, at: &str, errs: &mut ValidationErrors) {
    match from.source() {
        Err(why) => errs.push(at, why),
        Ok(crate::SecretRef::Kubernetes(r)) => {
            if !is_dns_subdomain(&r.name) {
                errs.push(
                    format!("{at}.secretKeyRef.name"),
                    "a Secret's name: lowercase letters, digits, '-' and '.', at most 253",
                );
            }
            if !is_secret_key(&r.key) {
                errs.push(
                    format!("{at}.secretKeyRef.key"),
                    "a Secret's key: letters, digits, '-', '_' and '.' (not . or ..)",
                );
            }
        }
        Ok(crate::SecretRef::Ssm(r)) => {
            if r.name.is_empty() || r.name.len() > 2048 || r.name.chars().any(char::is_whitespace) {
                errs.push(
                    format!("{at}.ssmParameter.name"),
                    "a parameter's name (/path/name) or ARN, without spaces",
                );
            }
        }
        Ok(crate::SecretRef::SecretsManager(r)) => {
            if r.secret_id.is_empty()
                || r.secret_id.len() > 2048
                || r.secret_id.chars().any(char::is_whitespace)
            {
                errs.push(
                    format!("{at}.secretsManager.secretId"),
                    "a secret's name or ARN, without spaces",
                );
            }
            if r.json_key.as_deref() == Some("") {
                errs.push(
                    format!("{at}.secretsManager.jsonKey"),
                    "empty: leave it out to take the whole secret string",
                );
            }
        }
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && !s.is_empty() && s.split('.').all(is_dns_label)
}

fn is_secret_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn check_role_arn(arn: &str) -> Result<(), String> {
    let shape = || {
        format!("must look like arn:aws:iam::<12-digit account>:role/<path/><name>, got {arn:?}")
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(shape());
    };
    let partition_ok = partition
        .strip_prefix("aws")
        .is_some_and(|rest| rest.bytes().all(|c| c.is_ascii_lowercase() || c == b'-'));
    if *prefix != "arn" || !partition_ok || *service != "iam" || !region.is_empty() {
        return Err(shape());
    }
    if !(account.len() == 12 && account.bytes().all(|c| c.is_ascii_digit())) {
        return Err(format!(
            "account id must be 12 digits, got {account:?} in {arn:?}"
        ));
    }
    let Some(role) = resource.strip_prefix("role/") else {
        return Err(shape());
    };
    let role_char = |c: u8| c.is_ascii_alphanumeric() || b"+=,.@_-".contains(&c);
    let segments: Vec<&str> = role.split('/').collect();
    let name = segments.last().copied().unwrap_or_default();
    if name.is_empty() || name.len() > 64 || !name.bytes().all(role_char) {
        return Err(format!(
            "role name must be 1-64 characters of letters, digits and +=,.@_-, got {name:?} in {arn:?}"
        ));
    }
    let path = &segments[..segments.len() - 1];
    if role.len() > 512
        || path
            .iter()
            .any(|s| s.is_empty() || !s.bytes().all(role_char))
    {
        return Err(format!("invalid role path in {arn:?}"));
    }
    Ok(())
}

pub(crate) fn check_http_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("must start with \"/\", got {path:?}"));
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
    {
        return Err(format!(
            "must be a plain path (no spaces, query or fragment), got {path:?}"
        ));
    }
    if path.contains("//") || path.split('/').any(|s| s == "." || s == "..") {
        return Err(format!(
            "must not contain empty, \".\" or \"..\" segments, got {path:?}"
        ));
    }
    if let Some(reserved) = crate::routing::reserved_path(path) {
        return Err(format!(
            "{path:?} is under {reserved:?}, which the gateway reserves (reserved: {})",
            RESERVED_PATH_PREFIXES.join(", ")
        ));
    }
    Ok(())
}

fn check_time_zone(tz: &str) -> Result<(), String> {
    crate::cron::time_zone(tz).map(|_| ())
}

/// Splits `http(s)://authority/path` into its authority and path (with leading `/`, maybe
/// empty). Errors on other schemes, userinfo, whitespace and an empty authority.
pub(crate) fn split_http_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("must be an http:// or https:// URL, got {url:?}"))?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("must not contain whitespace, got {url:?}"));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(format!("has no host, got {url:?}"));
    }
    if authority.contains('@') {
        return Err(format!("must not contain user info, got {url:?}"));
    }
    Ok((authority, path))
}

/// Whether `url` is an http(s) URL a manifest may name (`notify.url`): the one rule, also for
/// a URL a secret holds (`notify.urlFrom`).
pub fn check_http_url(url: &str) -> Result<(), String> {
    split_http_url(url).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn wasm_fn(name: &str) -> Function {
        Function {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: FunctionSpec {
                runtime: RuntimeSpec {
                    wasm: Some(WasmRuntime {
                        source: "hello.wasm".into(),
                        ..Default::default()
                    }),
                    container: None,
                },
                ..Default::default()
            },
            status: None,
        }
    }

    fn errors(f: &Function) -> Vec<String> {
        match validate(f) {
            Ok(()) => vec![],
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    fn assert_one_error(f: &Function, path: &str, contains: &str) {
        let errs = errors(f);
        assert_eq!(errs.len(), 1, "expected exactly one error, got {errs:#?}");
        assert!(
            errs[0].starts_with(&format!("{path}: ")) && errs[0].contains(contains),
            "expected an error at {path} containing {contains:?}, got {:?}",
            errs[0]
        );
    }

    #[test]
    fn minimal_function_is_valid() {
        assert_eq!(errors(&wasm_fn("hello")), Vec::<String>::new());
    }

    #[test]
    fn full_function_is_valid() {
        let mut f = wasm_fn("resize-images");
        f.spec.runtime.wasm = Some(WasmRuntime {
            source: "oci://123456789012.dkr.ecr.eu-west-3.amazonaws.com/fn/resize:1.4".into(),
            sha256: Some("a".repeat(64)),
            build: None,
            dirs: vec![DirGrant {
                host_path: "./data".into(),
                guest_path: "/data".into(),
                read_only: true,
            }],
        });
        f.spec.timeout = Some("15m".into());
        f.spec.memory = Some("4Gi".into());
        f.spec.concurrency = Some(10_000);
        f.spec.scale = Some(ScaleSpec {
            min: 0,
            max: Some(1000),
            idle_after: None,
        });
        f.spec.env.insert("LOG_LEVEL", "info");
        f.spec.env.insert("_x1", "");
        f.spec.iam = Some(IamSpec {
            role_arn: "arn:aws:iam::123456789012:role/fn/resize-images".into(),
        });
        f.spec.network = Some(NetworkSpec {
            allowed_outbound_hosts: vec![
                "https://api.example.com".into(),
                "*://*.s3.amazonaws.com:*".into(),
            ],
        });
        f.spec.http = Some(HttpSpec {
            path: Some("/resize".into()),
            hosts: vec!["resize.fn.example.com".into(), "*.example.org".into()],
            public: Some(true),
            max_body_size: Some("100Mi".into()),
        });
        f.spec.schedules = vec![
            Schedule {
                name: "nightly".into(),
                cron: "0 3 * * *".into(),
                time_zone: Some("Europe/Paris".into()),
                starting_deadline: Some("5m".into()),
                retries: Some(RetrySpec {
                    limit: 2,
                    backoff: Some("30s".into()),
                }),
                notify: Some(NotifySpec {
                    url: "https://hooks.example.com/x".into(),
                    on_success: false,
                    ..Default::default()
                }),
                ..Default::default()
            },
            Schedule {
                name: "every-minute".into(),
                cron: "0 * * ? * MON-FRI".into(),
                ..Default::default()
            },
        ];
        f.spec.triggers = Some(TriggersSpec {
            sqs: vec![
                SqsTrigger {
                    queue_url: "https://sqs.eu-west-3.amazonaws.com/123456789012/images".into(),
                    batch_size: Some(10_000),
                    batch_window: Some("2s".into()),
                    max_concurrency: Some(5),
                    ..Default::default()
                },
                SqsTrigger {
                    queue_url: "http://127.0.0.1:5000/123456789012/jobs.fifo".into(),
                    batch_size: Some(10),
                    ..Default::default()
                },
            ],
        });
        assert_eq!(errors(&f), Vec::<String>::new());
    }

    #[test]
    fn bad_name() {
        let f = wasm_fn("Foo_Bar");
        assert_eq!(
            errors(&f),
            vec![
                "metadata.name: must be a DNS-1123 label (lowercase letters, digits, '-', at most 63 chars), got \"Foo_Bar\""
            ]
        );
        let mut f = wasm_fn("x");
        f.metadata.name = None;
        assert_one_error(&f, "metadata.name", "is required");
        assert_one_error(&wasm_fn(&"a".repeat(64)), "metadata.name", "DNS-1123");
        assert_one_error(&wasm_fn("-a"), "metadata.name", "DNS-1123");
        assert_one_error(&wasm_fn("a-"), "metadata.name", "DNS-1123");
        assert!(errors(&wasm_fn(&"a".repeat(63))).is_empty());
        let mut f = wasm_fn("ok");
        f.metadata.namespace = Some("Team A".into());
        assert_one_error(&f, "metadata.namespace", "DNS-1123");
    }

    #[test]
    fn runtime_exactly_one() {
        let mut f = wasm_fn("a");
        f.spec.runtime.wasm = None;
        assert_one_error(
            &f,
            "spec.runtime",
            "exactly one of wasm or container must be set",
        );
        let mut f = wasm_fn("a");
        f.spec.runtime.container = Some(ContainerRuntime {
            image: Some("x".into()),
            port: Some(8080),
            ..Default::default()
        });
        assert_eq!(
            errors(&f),
            vec!["spec.runtime: exactly one of wasm or container must be set"]
        );
    }

    #[test]
    fn wasm_checks() {
        let mut f = wasm_fn("a");
        let w = f.spec.runtime.wasm.as_mut().expect("wasm");
        w.source = " ".into();
        w.sha256 = Some("abc".into());
        w.dirs.push(DirGrant {
            host_path: "d".into(),
            guest_path: "data".into(),
            read_only: false,
        });
        let errs = errors(&f);
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].starts_with("spec.runtime.wasm.source: "));
        assert!(errs[1].starts_with("spec.runtime.wasm.sha256: must be 64 hexadecimal"));
        assert!(errs[2].starts_with("spec.runtime.wasm.dirs[0].guestPath: must be an absolute"));
        let mut f = wasm_fn("a");
        f.spec.runtime.wasm.as_mut().expect("wasm").sha256 = Some("G".repeat(64));
        assert_one_error(&f, "spec.runtime.wasm.sha256", "hexadecimal");
    }

    fn container_fn(c: ContainerRuntime) -> Function {
        let mut f = wasm_fn("c");
        f.spec.runtime = RuntimeSpec {
            wasm: None,
            container: Some(c),
        };
        f
    }

    #[test]
    fn a_notify_url_is_written_or_from_one_secret_never_both() {
        let secret = || crate::EnvSource {
            secret_key_ref: Some(crate::SecretKeyRef {
                name: "hooks".into(),
                key: "slack".into(),
            }),
            ..Default::default()
        };
        let with = |notify: NotifySpec| {
            let mut f = wasm_fn("a");
            f.spec.schedules = vec![Schedule {
                name: "nightly".into(),
                cron: "0 3 * * *".into(),
                notify: Some(notify),
                ..Default::default()
            }];
            f
        };
        assert!(
            errors(&with(NotifySpec {
                url_from: Some(secret()),
                ..Default::default()
            }))
            .is_empty()
        );
        let both = errors(&with(NotifySpec {
            url: "https://hooks.example.com/x".into(),
            url_from: Some(secret()),
            ..Default::default()
        }));
        assert_eq!(
            both,
            ["spec.schedules[0].notify.urlFrom: set url or urlFrom, not both"]
        );
        let neither = errors(&with(NotifySpec::default()));
        assert_eq!(neither.len(), 1, "{neither:?}");
        assert!(
            neither[0].starts_with("spec.schedules[0].notify.url: "),
            "{neither:?}"
        );
        let empty_source = errors(&with(NotifySpec {
            url_from: Some(crate::EnvSource::default()),
            ..Default::default()
        }));
        assert_eq!(
            empty_source,
            [
                "spec.schedules[0].notify.urlFrom: names no source: set one of secretKeyRef, ssmParameter, secretsManager"
            ]
        );
        // In a cluster the controller reads Kubernetes Secrets only.
        let mut ssm = with(NotifySpec {
            url_from: Some(crate::EnvSource {
                ssm_parameter: Some(crate::SsmParameterRef {
                    name: "/hooks/slack".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        ssm.metadata.namespace = Some("team".into());
        assert!(errors(&ssm).is_empty(), "fine locally");
        let cluster = crate::validate_for_cluster(&ssm, None)
            .expect_err("refused in a cluster")
            .to_string();
        assert!(
            cluster.contains("spec.schedules[0].notify.urlFrom.ssmParameter: a notify URL comes from a Kubernetes Secret"),
            "{cluster}"
        );
    }

    #[test]
    fn notify_templates_formats_and_lateness_are_checked() {
        let mut f = wasm_fn("a");
        f.spec.schedules = vec![Schedule {
            name: "nightly".into(),
            cron: "0 3 * * *".into(),
            notify: Some(NotifySpec {
                url: "https://hooks.example.com/x".into(),
                on_late: Some("soon".into()),
                format: Some(NotifyFormat::Slack),
                body: Some(r#"{"text": "{{function}} {{outcome}}"}"#.into()),
                ..Default::default()
            }),
            ..Default::default()
        }];
        let errs = errors(&f);
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(
            errs[0].starts_with("spec.schedules[0].notify.onLate: invalid duration \"soon\""),
            "{}",
            errs[0]
        );
        assert!(errs[1].starts_with("spec.schedules[0].notify.body: unknown placeholder {{outcome}}; known: event, runId"), "{}", errs[1]);
        assert_eq!(
            errs[2],
            "spec.schedules[0].notify.format: a custom body is the body: drop format or body"
        );
    }

    #[test]
    fn a_job_takes_nothing_that_serves_requests() {
        let job = |port| {
            container_fn(ContainerRuntime {
                command: vec!["sh".into(), "report.sh".into()],
                mode: ContainerMode::Job,
                port,
                ..Default::default()
            })
        };
        assert_eq!(errors(&job(None)), Vec::<String>::new());
        let mut f = job(Some(8080));
        f.spec.http = Some(HttpSpec {
            path: Some("/report".into()),
            hosts: vec!["report.example.com".into()],
            ..Default::default()
        });
        f.spec.scale = Some(ScaleSpec::default());
        f.spec.triggers = Some(TriggersSpec {
            sqs: vec![SqsTrigger {
                queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/q".into(),
                ..Default::default()
            }],
        });
        assert_eq!(
            errors(&f),
            vec![
                "spec.runtime.container.port: a job has no server to reach (mode: job runs once per run, without HTTP)",
                "spec.http.path: a job is not called over HTTP: it runs by its schedules, `faas run` or the runs API",
                "spec.http.hosts: a job is not called over HTTP: it runs by its schedules, `faas run` or the runs API",
                "spec.scale: a job has no replicas: each run is its own process (a Kubernetes Job in a cluster)",
                "spec.triggers.sqs: a job takes no SQS trigger: use mode: lambda or http for a queue's messages",
            ]
        );
        assert!(f.spec.is_job());
        assert!(!wasm_fn("w").spec.is_job());
    }

    #[test]
    fn container_checks() {
        let ok = container_fn(ContainerRuntime {
            image: Some("nginx".into()),
            port: Some(80),
            ..Default::default()
        });
        assert!(errors(&ok).is_empty());
        let lambda = container_fn(ContainerRuntime {
            image: Some("public.ecr.aws/lambda/python:3.12".into()),
            mode: ContainerMode::Lambda,
            ..Default::default()
        });
        assert!(errors(&lambda).is_empty());
        let cmd = container_fn(ContainerRuntime {
            command: vec!["python3".into(), "handler.py".into()],
            mode: ContainerMode::Cgi,
            ..Default::default()
        });
        assert!(errors(&cmd).is_empty());

        let no_port = container_fn(ContainerRuntime {
            image: Some("nginx".into()),
            ..Default::default()
        });
        assert_one_error(
            &no_port,
            "spec.runtime.container.port",
            "required in http mode",
        );
        let zero = container_fn(ContainerRuntime {
            image: Some("nginx".into()),
            port: Some(0),
            mode: ContainerMode::Lambda,
            ..Default::default()
        });
        assert_one_error(&zero, "spec.runtime.container.port", "between 1 and 65535");
        let nothing = container_fn(ContainerRuntime {
            port: Some(8080),
            ..Default::default()
        });
        assert_one_error(
            &nothing,
            "spec.runtime.container",
            "one of image or command",
        );
    }

    #[test]
    fn limits_ranges() {
        type Case = (&'static str, fn(&mut FunctionSpec), &'static str);
        let cases: &[Case] = &[
            (
                "spec.timeout",
                |s| s.timeout = Some("30x".into()),
                "invalid duration \"30x\": ",
            ),
            (
                "spec.timeout",
                |s| s.timeout = Some("500ms".into()),
                "between 1s and 15m",
            ),
            (
                "spec.timeout",
                |s| s.timeout = Some("16m".into()),
                "between 1s and 15m",
            ),
            (
                "spec.memory",
                |s| s.memory = Some("512Ki".into()),
                "between 1Mi and 4Gi",
            ),
            (
                "spec.memory",
                |s| s.memory = Some("5Gi".into()),
                "between 1Mi and 4Gi",
            ),
            (
                "spec.memory",
                |s| s.memory = Some("12MB".into()),
                "invalid quantity \"12MB\"",
            ),
            (
                "spec.concurrency",
                |s| s.concurrency = Some(0),
                "between 1 and 10000, got 0",
            ),
            (
                "spec.concurrency",
                |s| s.concurrency = Some(10_001),
                "between 1 and 10000",
            ),
            (
                "spec.http.maxBodySize",
                |s| {
                    s.http = Some(HttpSpec {
                        max_body_size: Some("101Mi".into()),
                        ..Default::default()
                    })
                },
                "between 1 and 100Mi",
            ),
            (
                "spec.http.maxBodySize",
                |s| {
                    s.http = Some(HttpSpec {
                        max_body_size: Some("0".into()),
                        ..Default::default()
                    })
                },
                "between 1 and 100Mi",
            ),
        ];
        for (path, set, msg) in cases {
            let mut f = wasm_fn("a");
            set(&mut f.spec);
            assert_one_error(&f, path, msg);
        }
        let mut f = wasm_fn("a");
        f.spec.timeout = Some("1s".into());
        f.spec.memory = Some("1Mi".into());
        f.spec.concurrency = Some(1);
        assert!(errors(&f).is_empty());
    }

    #[test]
    fn scale_env_iam() {
        let mut f = wasm_fn("a");
        f.spec.scale = Some(ScaleSpec {
            min: 5,
            max: Some(3),
            idle_after: None,
        });
        assert_one_error(&f, "spec.scale.min", "(5 > 3)");
        f.spec.scale = Some(ScaleSpec {
            min: 0,
            max: Some(1001),
            idle_after: None,
        });
        assert_one_error(&f, "spec.scale.max", "between 1 and 1000, got 1001");
        f.spec.scale = Some(ScaleSpec {
            min: 2,
            max: None,
            idle_after: None,
        });
        assert!(errors(&f).is_empty());
        f.spec.scale = Some(ScaleSpec {
            min: 0,
            max: None,
            idle_after: Some("10x".into()),
        });
        assert_one_error(&f, "spec.scale.idleAfter", "invalid duration \"10x\"");
        f.spec.scale = Some(ScaleSpec {
            min: 0,
            max: None,
            idle_after: Some("5s".into()),
        });
        assert_one_error(&f, "spec.scale.idleAfter", "must be at least 30s");
        f.spec.scale = Some(ScaleSpec {
            min: 0,
            max: None,
            idle_after: Some("15m".into()),
        });
        assert!(errors(&f).is_empty());

        let mut f = wasm_fn("a");
        f.spec.env.insert("1BAD", "x");
        f.spec.env.insert("BAD-NAME", "x");
        f.spec.env.insert("GOOD_1", "x");
        let errs = errors(&f);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].starts_with("spec.env[\"1BAD\"]: "));
        assert!(errs[1].starts_with("spec.env[\"BAD-NAME\"]: "));

        for good in [
            "arn:aws:iam::123456789012:role/resize-images",
            "arn:aws-us-gov:iam::123456789012:role/a/b/c+=,.@_-x",
            "arn:aws-cn:iam::000000000000:role/x",
        ] {
            let mut f = wasm_fn("a");
            f.spec.iam = Some(IamSpec {
                role_arn: good.into(),
            });
            assert!(errors(&f).is_empty(), "{good}: {:?}", errors(&f));
        }
        for bad in [
            "",
            "arn:aws:iam::123:role/resize-images",
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:s3::123456789012:role/x",
            "arn:aws:iam:eu-west-1:123456789012:role/x",
            "arn:gcp:iam::123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role//x",
            "arn:aws:iam::123456789012:role/has space",
            &format!("arn:aws:iam::123456789012:role/{}", "r".repeat(65)),
        ] {
            let mut f = wasm_fn("a");
            f.spec.iam = Some(IamSpec {
                role_arn: bad.into(),
            });
            assert_one_error(&f, "spec.iam.roleArn", "");
        }
    }

    #[test]
    fn http_checks() {
        let bad_paths = [
            "resize",
            "/function/x",
            "/function",
            "/async-function/x",
            "/system/functions",
            "/healthz",
            "/readyz/x",
            "/metrics",
            "/ui",
            "/ui/admin",
            "/a b",
            "/a?x=1",
            "/a//b",
            "/a/../b",
        ];
        for p in bad_paths {
            let mut f = wasm_fn("a");
            f.spec.http = Some(HttpSpec {
                path: Some(p.into()),
                ..Default::default()
            });
            assert_one_error(&f, "spec.http.path", "");
        }
        for p in [
            "/",
            "/resize",
            "/functional",
            "/api/v1/",
            "/metrics-ui",
            "/uix",
        ] {
            let mut f = wasm_fn("a");
            f.spec.http = Some(HttpSpec {
                path: Some(p.into()),
                ..Default::default()
            });
            assert!(errors(&f).is_empty(), "{p}: {:?}", errors(&f));
        }
        let mut f = wasm_fn("a");
        f.spec.http = Some(HttpSpec {
            hosts: vec![
                "ok.example.com".into(),
                "Upper.example.com".into(),
                "*.ok.example.com".into(),
                "a.*.example.com".into(),
                "host:8080".into(),
                "-bad.example.com".into(),
                "".into(),
                "*.17".into(),
                "10.0.3.17".into(),
                "localhost".into(),
            ],
            ..Default::default()
        });
        let errs = errors(&f);
        let paths: Vec<&str> = errs
            .iter()
            .map(|e| e.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(
            paths,
            [
                "spec.http.hosts[1]",
                "spec.http.hosts[3]",
                "spec.http.hosts[4]",
                "spec.http.hosts[5]",
                "spec.http.hosts[6]",
                "spec.http.hosts[7]",
                "spec.http.hosts[8]",
                "spec.http.hosts[9]"
            ]
        );
    }

    fn sched(name: &str, cron: &str) -> Schedule {
        Schedule {
            name: name.into(),
            cron: cron.into(),
            ..Default::default()
        }
    }

    #[test]
    fn schedule_checks() {
        let mut f = wasm_fn("a");
        f.spec.schedules = vec![
            sched("nightly", "* * * *"),
            Schedule {
                time_zone: Some("Mars/Base".into()),
                ..sched("hourly", "@hourly")
            },
            sched("nightly", "0 3 * * *"),
            sched("", "61 * * * *"),
            Schedule {
                starting_deadline: Some("soon".into()),
                timeout: Some("0s".into()),
                retries: Some(RetrySpec {
                    limit: 11,
                    backoff: Some("3x".into()),
                }),
                notify: Some(NotifySpec {
                    url: "ftp://x".into(),
                    on_success: true,
                    ..Default::default()
                }),
                history: Some(HistorySpec {
                    keep_for: Some("forever".into()),
                    ..Default::default()
                }),
                ..sched("Bad_Name", "@daily")
            },
            sched("manual", "@daily"),
        ];
        let errs = errors(&f);
        let expected_prefixes = [
            "spec.schedules[0].cron: \"* * * *\": expected 5, 6 or 7 fields, got 4",
            "spec.schedules[1].timeZone: unknown time zone \"Mars/Base\"",
            "spec.schedules[2].name: duplicate schedule name \"nightly\" (also spec.schedules[0])",
            "spec.schedules[3].name: must not be empty",
            "spec.schedules[3].cron: \"61 * * * *\": minute field \"61\" out of range 0-59",
            "spec.schedules[4].name: must be a DNS-1123 label",
            "spec.schedules[4].startingDeadline: invalid duration \"soon\"",
            "spec.schedules[4].timeout: must be greater than 0",
            "spec.schedules[4].retries.limit: must be at most 10, got 11",
            "spec.schedules[4].retries.backoff: invalid duration \"3x\"",
            "spec.schedules[4].notify.url: must be an http:// or https:// URL",
            "spec.schedules[4].history.keepFor: invalid duration \"forever\"",
            "spec.schedules[5].name: \"manual\" is reserved",
        ];
        assert_eq!(errs.len(), expected_prefixes.len(), "{errs:#?}");
        for (e, p) in errs.iter().zip(expected_prefixes) {
            assert!(e.starts_with(p), "{e:?} should start with {p:?}");
        }
    }

    #[test]
    fn schedule_cron_meaning() {
        let mut f = wasm_fn("a");
        f.spec.schedules = vec![
            sched("quartz-sunday", "0 0 0 ? * 0"),
            sched("feb-30", "0 0 30 2 *"),
            sched("fine", "0 0 12 ? * SUN#2 2150"),
            sched("bad-step", "0 0 0 ? * */8"),
        ];
        let errs = errors(&f);
        let expected = [
            "spec.schedules[0].cron: \"0 0 0 ? * 0\": day-of-week field \"0\" out of range 1-7",
            "spec.schedules[1].cron: \"0 0 30 2 *\": never fires",
            "spec.schedules[3].cron: \"0 0 0 ? * */8\": day-of-week field \"*/8\" has step 8 (expected 1-7)",
        ];
        assert_eq!(errs.len(), expected.len(), "{errs:#?}");
        for (e, p) in errs.iter().zip(expected) {
            assert!(e.starts_with(p), "{e:?} should start with {p:?}");
        }
    }

    fn sqs(url: &str) -> SqsTrigger {
        SqsTrigger {
            queue_url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn sqs_checks() {
        let with = |t: SqsTrigger| {
            let mut f = wasm_fn("a");
            f.spec.triggers = Some(TriggersSpec { sqs: vec![t] });
            f
        };
        let std_q = "https://sqs.eu-west-3.amazonaws.com/123456789012/images";
        let fifo_q = "https://sqs.eu-west-3.amazonaws.com/123456789012/images.fifo";
        for good in [
            std_q,
            fifo_q,
            "http://localhost:5000/123456789012/q",
            "http://127.0.0.1:41234/123456789012/my_queue-1/",
            "https://sqs.us-gov-west-1.amazonaws.com/000000000000/x",
        ] {
            assert!(errors(&with(sqs(good))).is_empty(), "{good}");
        }
        for bad in [
            "",
            "sqs://x/123456789012/q",
            "https://sqs.eu-west-3.amazonaws.com/images",
            "https://sqs.eu-west-3.amazonaws.com/123/images",
            "https://sqs.eu-west-3.amazonaws.com/123456789012/a/b",
            "https://sqs.eu-west-3.amazonaws.com/123456789012/bad name",
            "https://sqs.eu-west-3.amazonaws.com/123456789012/.fifo",
            "https://sqs.eu-west-3.amazonaws.com/123456789012/q?x=1",
            "https:///123456789012/q",
        ] {
            assert_one_error(
                &with(sqs(bad)),
                "spec.triggers.sqs[0].queueUrl",
                "SQS queue URL",
            );
        }

        let batch = |url: &str, size: u32, window: Option<&str>| {
            with(SqsTrigger {
                batch_size: Some(size),
                batch_window: window.map(Into::into),
                ..sqs(url)
            })
        };
        assert_eq!(
            errors(&batch(std_q, 0, None)),
            vec![
                "spec.triggers.sqs[0].batchSize: must be between 1 and 10 (up to 10000 for standard queues with batchWindow >= 1s), got 0"
            ]
        );
        assert!(errors(&batch(std_q, 10, None)).is_empty());
        assert_one_error(
            &batch(std_q, 11, None),
            "spec.triggers.sqs[0].batchSize",
            "got 11",
        );
        assert_one_error(
            &batch(std_q, 11, Some("500ms")),
            "spec.triggers.sqs[0].batchSize",
            "got 11",
        );
        assert!(errors(&batch(std_q, 11, Some("1s"))).is_empty());
        assert!(errors(&batch(std_q, 10_000, Some("300s"))).is_empty());
        assert_one_error(
            &batch(std_q, 10_001, Some("5s")),
            "spec.triggers.sqs[0].batchSize",
            "got 10001",
        );
        assert_one_error(
            &batch(fifo_q, 11, Some("5s")),
            "spec.triggers.sqs[0].batchSize",
            "got 11",
        );
        assert!(errors(&batch(std_q, 1, Some("0s"))).is_empty());
        assert_one_error(
            &batch(std_q, 1, Some("301s")),
            "spec.triggers.sqs[0].batchWindow",
            "between 0s and 300s",
        );
        assert_one_error(
            &batch(std_q, 1, Some("x")),
            "spec.triggers.sqs[0].batchWindow",
            "invalid duration",
        );

        for (c, ok) in [(0, false), (1, true), (1000, true), (1001, false)] {
            let f = with(SqsTrigger {
                max_concurrency: Some(c),
                ..sqs(std_q)
            });
            assert_eq!(errors(&f).is_empty(), ok, "maxConcurrency {c}");
        }

        let mut f = wasm_fn("a");
        f.spec.triggers = Some(TriggersSpec {
            sqs: vec![sqs(std_q), sqs(std_q)],
        });
        assert_one_error(&f, "spec.triggers.sqs[1].queueUrl", "already has a trigger");

        let filtered = |patterns: &[&str]| {
            with(SqsTrigger {
                filter_criteria: Some(crate::function::FilterCriteria {
                    filters: patterns
                        .iter()
                        .map(|p| crate::function::FilterSpec {
                            pattern: (*p).to_owned(),
                        })
                        .collect(),
                }),
                ..sqs(std_q)
            })
        };
        assert!(errors(&filtered(&[r#"{"body": {"type": ["order"]}}"#])).is_empty());
        assert_one_error(
            &filtered(&[r#"{"body": {"type": ["order"]}}"#, r#"{"body": "order"}"#]),
            "spec.triggers.sqs[0].filterCriteria.filters[1].pattern",
            "lists of rules",
        );
        assert_one_error(
            &filtered(&[]),
            "spec.triggers.sqs[0].filterCriteria.filters",
            "1 to 10 filters",
        );
        assert_one_error(
            &filtered(&[r#"{"a": ["b"]}"#; 11]),
            "spec.triggers.sqs[0].filterCriteria.filters",
            "got 11",
        );
    }

    #[test]
    fn network_errors_name_the_index() {
        let mut f = wasm_fn("a");
        f.spec.network = Some(NetworkSpec {
            allowed_outbound_hosts: vec![
                "https://ok.example.com".into(),
                "http://ok.example.com:8080".into(),
                "https://api.example.com/v1".into(),
            ],
        });
        assert_one_error(&f, "spec.network.allowedOutboundHosts[2]", "path");
    }

    #[test]
    fn placement_checks() {
        let mut f = wasm_fn("a");
        f.spec.placement = Some(PlacementSpec {
            capacity: Capacity::OnDemand,
            pool: Some("Pool A".into()),
            node_group: Some("-x".into()),
            tolerations: vec![
                crate::TolerationSpec {
                    key: "gpu".into(),
                    operator: Some("Exists".into()),
                    value: Some("yes".into()),
                    effect: Some("NoSchedule".into()),
                },
                crate::TolerationSpec {
                    key: "team".into(),
                    operator: Some("In".into()),
                    value: None,
                    effect: Some("Never".into()),
                },
            ],
            node_selector: [("disk".to_owned(), "fast ssd".to_owned())].into(),
            security_group: Some("db access".into()),
        });
        f.spec.cpu = Some("fast".into());
        f.spec.runtime.wasm = None;
        f.spec.runtime.container = Some(ContainerRuntime {
            image: Some("a:1".into()),
            port: Some(8080),
            mode: ContainerMode::Lambda,
            readiness_path: Some("health z".into()),
            ..ContainerRuntime::default()
        });
        let errs = errors(&f);
        let fields: Vec<&str> = errs
            .iter()
            .map(|e| e.split(": ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            fields,
            [
                "spec.runtime.container.readinessPath",
                "spec.runtime.container.readinessPath",
                "spec.cpu",
                "spec.placement.tolerations[0].value",
                "spec.placement.tolerations[1].operator",
                "spec.placement.tolerations[1].effect",
                "spec.placement.nodeSelector.disk",
                "spec.placement.securityGroup",
                "spec.placement.pool",
                "spec.placement.nodeGroup",
            ],
            "{errs:#?}"
        );
        for ok in ["250m", "1", "0.5", "2000m"] {
            assert_eq!(check_cpu(ok), Ok(()), "{ok}");
        }
        for bad in ["0", "0m", "1.5m", "", "m", "1..2", "-1", "1Gi"] {
            assert!(check_cpu(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_toleration_is_refused() {
        let mut f = wasm_fn("a");
        f.spec.placement = Some(PlacementSpec {
            tolerations: vec![crate::TolerationSpec {
                key: String::new(),
                operator: Some("Exists".into()),
                value: None,
                effect: None,
            }],
            ..PlacementSpec::default()
        });
        assert_one_error(
            &f,
            "spec.placement.tolerations[0].key",
            "tolerates every taint",
        );
        f.spec.placement = Some(PlacementSpec {
            tolerations: vec![crate::TolerationSpec {
                key: "example.com/gpu".into(),
                operator: Some("Exists".into()),
                value: None,
                effect: Some("NoSchedule".into()),
            }],
            ..PlacementSpec::default()
        });
        assert_eq!(errors(&f), Vec::<String>::new());
    }

    #[test]
    fn collects_all_errors_and_displays_them_joined() {
        let mut f = wasm_fn("Bad");
        f.spec.runtime.wasm = None;
        f.spec.timeout = Some("forever".into());
        f.spec.concurrency = Some(0);
        let e = validate(&f).expect_err("invalid");
        assert_eq!(e.len(), 4);
        let shown = e.to_string();
        assert_eq!(shown.matches("; ").count(), 3, "{shown}");
        assert!(shown.starts_with("metadata.name: "));
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "metadata.name",
                "spec.runtime",
                "spec.timeout",
                "spec.concurrency"
            ]
        );
    }

    #[test]
    fn env_entries_from_sources_are_checked_naming_the_entry() {
        let mut f = wasm_fn("a");
        f.spec.env = serde_json::from_value(serde_json::json!([
            {"name": "OK", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pass.word"}}},
            {"name": "BOTH", "value": "x", "valueFrom": {"ssmParameter": {"name": "/p"}}},
            {"name": "NONE", "valueFrom": {}},
            {"name": "TWO", "valueFrom": {"ssmParameter": {"name": "/p"},
                                          "secretsManager": {"secretId": "s"}}},
            {"name": "PATH_KEY", "valueFrom": {"secretKeyRef": {"name": "db", "key": ".."}}},
            {"name": "UPPER", "valueFrom": {"secretKeyRef": {"name": "DB", "key": "k"}}},
            {"name": "SPACE", "valueFrom": {"ssmParameter": {"name": "/a b"}}},
            {"name": "EMPTY_KEY", "valueFrom": {"secretsManager": {"secretId": "s", "jsonKey": ""}}},
            {"name": "OK", "value": "again"},
        ]))
        .expect("env");
        let errs = errors(&f);
        let paths: Vec<&str> = errs
            .iter()
            .map(|e| e.split(": ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            paths,
            [
                "spec.env[\"BOTH\"]",
                "spec.env[\"NONE\"].valueFrom",
                "spec.env[\"TWO\"].valueFrom",
                "spec.env[\"PATH_KEY\"].valueFrom.secretKeyRef.key",
                "spec.env[\"UPPER\"].valueFrom.secretKeyRef.name",
                "spec.env[\"SPACE\"].valueFrom.ssmParameter.name",
                "spec.env[\"EMPTY_KEY\"].valueFrom.secretsManager.jsonKey",
                "spec.env[\"OK\"]",
            ],
            "{errs:#?}"
        );
        assert!(errs[7].ends_with("set more than once"), "{errs:#?}");
    }
}
