//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: a pod's container log, as the kubelet
//! answers it through the API server. The stand-in runs nothing, so the lines come from
//! whoever does (the kubelet stand-in) through a [`LogSource`]; this module answers the
//! query parameters the way the kubelet does: `container` (required when the pod has more
//! than one), `sinceTime`, `sinceSeconds`, `tailLines`, `limitBytes` and `timestamps`.
//! `follow` is answered with what there is so far (the stream then ends), and `previous`
//! with 400: containers here keep one log across restarts.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// A container's log so far, one line each, each line `<RFC 3339 time> <text>` (the form the
/// container runtime stores, without the stream name), or `None` when there is none.
pub type LogSource = Arc<dyn Fn(&str, &str, &str) -> Option<String> + Send + Sync>;

/// The answer to a log request for `pod` (the stored object), its lines from `source`.
pub(crate) fn answer(
    source: Option<&LogSource>,
    pod: &Value,
    q: &HashMap<String, String>,
) -> ApiResult<String> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            pod["spec"]["initContainers"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .filter_map(|c| c["name"].as_str())
        .collect();
    let container = match q.get("container").map(String::as_str) {
        Some(c) if !c.is_empty() => c,
        _ if pod["spec"]["containers"].as_array().map(Vec::len) == Some(1) => containers[0],
        _ => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: {containers:?}"
            )));
        }
    };
    if !containers.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    if q.get("previous").is_some_and(|p| p == "true") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    let number = |key: &str| -> ApiResult<Option<i64>> {
        q.get(key)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0 || key == "tailLines")
                    .ok_or_else(|| ApiError::bad_request(format!("invalid {key} {v:?}")))
            })
            .transpose()
    };
    let since = match (q.get("sinceTime"), number("sinceSeconds")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "at most one of sinceTime or sinceSeconds may be specified",
            ));
        }
        (Some(time), None) => Some(
            time.parse::<jiff::Timestamp>()
                .map_err(|e| ApiError::bad_request(format!("invalid sinceTime {time:?}: {e}")))?,
        ),
        (None, Some(seconds)) => {
            Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(seconds))
        }
        (None, None) => None,
    };
    let timestamps = q.get("timestamps").is_some_and(|t| t == "true");
    let text = source
        .and_then(|s| s(namespace, name, container))
        .unwrap_or_default();
    let mut lines: Vec<(jiff::Timestamp, &str)> = text
        .lines()
        .filter_map(|line| {
            let (time, rest) = line.split_once(' ')?;
            Some((time.parse().ok()?, rest))
        })
        .filter(|(time, _)| since.is_none_or(|since| *time >= since))
        .collect();
    if let Some(tail) = number("tailLines")?.filter(|n| *n >= 0) {
        let keep = usize::try_from(tail).unwrap_or(usize::MAX);
        lines.drain(..lines.len().saturating_sub(keep));
    }
    let mut out = String::new();
    for (time, line) in lines {
        if timestamps {
            out.push_str(&format!("{time:.9} "));
        }
        out.push_str(line);
        out.push('\n');
    }
    if let Some(limit) = number("limitBytes")? {
        let mut end = usize::try_from(limit).unwrap_or(usize::MAX).min(out.len());
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    Ok(out)
}
