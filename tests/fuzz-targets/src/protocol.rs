//! Bytes another program sends: a CGI program's output, a Lambda handler's result and the
//! requests its events are made of, a function's answer to an SQS batch, the async-call
//! messages read back from a queue, the hosts and paths of requests.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use faas_gateway::routes::{Audience, Route, RouteTable, route_for};
use faas_runtime::process::lambda::events::{self, Identity, Shape};
use faas_sqs::event::Message;

use crate::text;

/// A CGI program's output: never panics; an accepted response has a status in 100-599 and
/// its body is the end of the output.
pub fn cgi(data: &[u8]) {
    if let Ok(response) = faas_runtime::cgi::parse_response(data) {
        let status = response.status().as_u16();
        assert!((100..=599).contains(&status), "status {status}");
        assert!(
            data.ends_with(response.body()),
            "the body is not the end of the output"
        );
    }
}

/// An async call as read back from its queue (anyone with access to the queue can put a
/// message there): decoding never panics, and a decoded call encodes to a message that
/// decodes to the same call.
pub fn async_call(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(call) = faas_gateway::async_call::AsyncCall::decode(text) else {
        return;
    };
    let encoded = call.encode();
    let again = faas_gateway::async_call::AsyncCall::decode(&encoded)
        .unwrap_or_else(|e| panic!("an encoded call does not decode: {e}\n{encoded}"));
    assert_eq!(again.encode(), encoded);
}

/// A route table and a request, one per line: `h HOST KEY`, `p PREFIX KEY`, `x KEY` (private),
/// then the request's host and path on the last line. Routing never panics; a public request
/// never reaches a private function by host or prefix, and every function route names a key
/// of the table or the `/function/{name}` segment.
pub fn routes(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let mut lines: Vec<&str> = text.lines().collect();
    let Some(request) = lines.pop() else { return };
    let mut table = RouteTable::default();
    let mut keys = BTreeSet::new();
    for line in lines {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["h", host, key] => table.hosts.push(((*host).to_owned(), (*key).to_owned())),
            ["p", prefix, key] if prefix.starts_with('/') => table
                .prefixes
                .push(((*prefix).to_owned(), (*key).to_owned())),
            ["x", key] => {
                table.private.insert((*key).to_owned());
            }
            _ => continue,
        }
        if let Some(key) = words.last() {
            keys.insert((*key).to_owned());
        }
    }
    table.finish();
    let (host, path) = request.split_once(' ').unwrap_or(("", request));
    let host = Some(host).filter(|h| !h.is_empty());
    for audience in [Audience::Public, Audience::Internal] {
        if let Route::Function { name, prefix } = route_for(&table, host, path, audience) {
            let by_name = prefix.starts_with("/function/");
            assert!(
                by_name || keys.contains(name),
                "{name:?} (mount {prefix:?}) is not in the table"
            );
            if audience == Audience::Public && !by_name {
                assert!(
                    !table.private.contains(name),
                    "the public listener reached private {name:?}"
                );
            }
        }
    }
}

/// A request turned into a Lambda event (first line `METHOD TARGET`, then `name: value`
/// headers, a blank line, the body) and a handler's result turned into a response: never
/// panic; every event but a passthrough is JSON.
pub fn lambda_events(data: &[u8]) {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(data.len());
    let (head, body) = data.split_at(split);
    let body = Bytes::copy_from_slice(body.get(2..).unwrap_or_default());
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let (method, target) = lines
        .next()
        .and_then(|l| l.split_once(' '))
        .unwrap_or(("POST", "/"));
    let mut builder = http::Request::builder().method(method).uri(target);
    for line in lines {
        if let Some((name, value)) = line.split_once(": ") {
            builder = builder.header(name, value);
        }
    }
    let Ok(request) = builder.body(body.clone()) else {
        return;
    };
    let identity = Identity {
        function: "fuzz".to_owned(),
        region: "eu-west-1".to_owned(),
        account: "123456789012".to_owned(),
    };
    let _ = events::client_context(&request);
    for shape in [
        Shape::of(&request),
        Shape::Http,
        Shape::Scheduled,
        Shape::Passthrough,
    ] {
        let event = events::event(shape, &identity, &request);
        if shape != Shape::Passthrough {
            assert!(
                serde_json::from_slice::<serde_json::Value>(&event).is_ok(),
                "{shape:?}: the event is not JSON"
            );
        }
        let _ = events::response(shape, body.clone());
    }
}

/// A function's answer to an SQS batch (two bytes of flags and status, one byte per message
/// giving its FIFO group, then `|` and the answer's body): every message is settled exactly
/// once, nothing is deleted unless the answer was 2xx, and in a FIFO batch nothing after a
/// kept message of a group is deleted.
pub fn settle(data: &[u8]) {
    let Some(([flags, status], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = rest.iter().position(|b| *b == b'|').unwrap_or(rest.len());
    let (groups, body) = rest.split_at(split);
    let groups = &groups[..groups.len().min(10)];
    let body = body.get(1..).unwrap_or_default();
    let fifo = flags & 1 == 1;
    let report = flags & 2 == 2;
    let status = match status % 4 {
        0 => 200,
        1 => 204,
        2 => 500,
        _ => 100 + u16::from(*status) * 2,
    };
    let batch: Vec<Message> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| Message {
            message_id: format!("m{i}"),
            receipt_handle: format!("r{i}"),
            body: String::new(),
            attributes: BTreeMap::from([("MessageGroupId".to_owned(), format!("g{}", g % 3))]),
            message_attributes: BTreeMap::new(),
            md5_of_body: String::new(),
            md5_of_message_attributes: None,
        })
        .collect();
    let settled = faas_sqs::settle::settle(&batch, fifo, report, status, body);
    let mut all: Vec<usize> = settled
        .delete
        .iter()
        .chain(&settled.keep)
        .copied()
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..batch.len()).collect::<Vec<_>>(),
        "each message settled once"
    );
    if !(200..300).contains(&status) {
        assert!(settled.delete.is_empty(), "deleted after HTTP {status}");
    }
    if !settled.keep.is_empty() {
        assert!(settled.reason.is_some(), "kept without a reason");
    }
    if fifo {
        for kept in &settled.keep {
            let group = batch[*kept].group();
            for (later, message) in batch.iter().enumerate().skip(*kept + 1) {
                if message.group() == group {
                    assert!(
                        !settled.delete.contains(&later),
                        "FIFO: m{later} deleted after m{kept} of its group was kept"
                    );
                }
            }
        }
    }
}
