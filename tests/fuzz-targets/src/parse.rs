//! Text a person or a tenant writes: manifests, cron expressions, image references and
//! manifests a registry sends, query strings of the management API and the dashboard.

use faas_api::cron::CronSchedule;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::text;

/// `faas.yaml` documents: parsing and validation never panic, and a Function that validates
/// still validates once written out and read back (the CLI and the controller re-serialize
/// manifests).
pub fn manifest(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(functions) = faas_api::manifest::parse_functions(text, "fuzz.yaml") else {
        return;
    };
    for function in &functions {
        if faas_api::validate::validate(function).is_err() {
            continue;
        }
        let written = serde_yaml::to_string(function).expect("a valid Function serializes");
        let read =
            faas_api::manifest::parse_functions(&written, "again.yaml").unwrap_or_else(|e| {
                panic!("a valid Function written out does not parse: {e}\n{written}")
            });
        assert_eq!(read.len(), 1, "{written}");
        if let Err(e) = faas_api::validate::validate(&read[0]) {
            panic!("valid, written out and read back, no longer valid: {e}\n{written}");
        }
    }
}

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Chatham",
];

/// A cron expression (after 5 bytes choosing a zone and a start within ten years): parsing
/// never panics; a next fire time is strictly after the start, and `latest_between` finds it
/// again.
pub fn cron(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<5>() else {
        return;
    };
    let Some(expr) = text(rest) else { return };
    let Ok(schedule) = CronSchedule::parse(expr) else {
        return;
    };
    let Ok(tz) = TimeZone::get(ZONES[usize::from(head[0]) % ZONES.len()]) else {
        return;
    };
    let offset = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) % (10 * 366 * 86_400);
    let Ok(from) = Timestamp::from_second(1_767_225_600 + i64::from(offset)) else {
        return;
    };
    if let Some(next) = schedule.next_after(from, &tz) {
        assert!(
            next > from,
            "{expr:?} in {tz:?}: {next} is not after {from}"
        );
        assert_eq!(
            schedule.latest_between(from, next, &tz),
            Some(next),
            "{expr:?} in {tz:?} after {from}"
        );
    }
}

/// An image reference (the first line) and an image manifest (the rest), as a registry
/// answers it: a reference that parses prints back to itself and parses again to the same;
/// a manifest's WebAssembly layer, when there is one, has a sha256 digest.
pub fn oci(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(reference) = faas_oci::Reference::parse(first) {
        let shown = reference.to_string();
        let again = faas_oci::Reference::parse(&shown).unwrap_or_else(|e| {
            panic!("{first:?} printed as {shown:?}, which does not parse: {e}")
        });
        assert_eq!(again.to_string(), shown, "{first:?}");
    }
    let Ok(reference) = faas_oci::Reference::parse("registry.example/team/fn:v1") else {
        return;
    };
    if let Ok(layer) = faas_oci::wasm_layer(&reference, rest.as_bytes()) {
        let hex = layer.digest.strip_prefix("sha256:").unwrap_or_default();
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{:?}",
            layer.digest
        );
    }
}

/// A query string of the management API and the dashboard (`?function=..&phase=..`), and a
/// Lambda `FunctionName` with its `Qualifier`: never panic.
pub fn query(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let query = faas_gateway::runs_api::Query::parse(Some(text));
    for key in [
        "function", "schedule", "phase", "limit", "callId", "since", "offset",
    ] {
        let _ = query.get(key);
        let _ = query.all(key).count();
    }
    let _ = faas_gateway::runs_api::decoded(text);
    let (name, qualifier) = text.split_once('\n').unwrap_or((text, ""));
    let _ = faas_gateway::lambda_api::name::parse(name, Some(qualifier).filter(|q| !q.is_empty()));
}
