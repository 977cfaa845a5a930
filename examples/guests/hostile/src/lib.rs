//! A `wasi:http/proxy` component that misbehaves on request, for the platform's tests.
//!
//! The last path segment of the request URI chooses the behaviour:
//!
//! | segment | behaviour |
//! |---|---|
//! | `ok` | `200 ok` |
//! | `loop` | spins forever (the platform's timeout must stop it) |
//! | `bomb` | allocates and touches 1 MiB chunks until allocation fails (memory cap) |
//! | `panic` | `panic!("boom")` |
//! | `spam` | writes 64 MiB to stdout (1 KiB lines) and 1 MiB to stderr, then `200 spammed` |
//! | `fetch` | `GET` of the URL in header `x-target-url` via `faas_sdk::send` (`wasi:http/outgoing-handler`): `200` with body `<upstream status>\n<upstream body>` and header `x-upstream-status`, or `502` with the `ErrorCode`'s `Debug` text |
//! | `env` | `200` with the environment variables as sorted `K=V` lines |
//! | `sleep` | busy-waits for `x-sleep-ms` milliseconds, then `200 slept` |
//! | `echo` | `200` with the request body |
//! | `log` | prints three lines to stdout and one to stderr, then `200 logged` |
//!
//! Anything else gets `404`. A request to the root (how cron runs call a function: `POST /`
//! with the schedule's payload) takes the mode from its body instead: `sleep 3000`, `log`.

use faas_sdk::{Bytes, IntoResponse, Request, Response, StatusCode};
use std::io::Write;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;
const LINE: usize = 1024;

fn handle(req: Request) -> Response {
    let segment = req.uri().path().rsplit('/').next().unwrap_or_default();
    let (mode, arg) = if segment.is_empty() {
        let text = String::from_utf8_lossy(req.body()).trim().to_owned();
        match text.split_once(' ') {
            Some((mode, arg)) => (mode.to_owned(), Some(arg.trim().to_owned())),
            None => (text, None),
        }
    } else {
        (segment.to_owned(), None)
    };
    match mode.as_str() {
        "ok" => "ok".into_response(),
        "loop" => spin_forever(),
        "bomb" => memory_bomb(),
        "panic" => panic!("boom"),
        "spam" => spam(),
        "fetch" => fetch(&req),
        "env" => env(),
        "sleep" => sleep(&req, arg.as_deref()),
        "echo" => Response::new(req.into_body()),
        // The host the request was for, as the platform hands it over (RFC 9112 §3.2.2: the
        // target's authority for a request in absolute form).
        "host" => req
            .headers()
            .get("host")
            .map_or_else(String::new, |h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .into_response(),
        "log" => log(),
        other => (
            StatusCode::NOT_FOUND,
            format!(
                "unknown mode {other:?}; use ok, loop, bomb, panic, spam, fetch, env, sleep, echo, host or log\n"
            ),
        )
            .into_response(),
    }
}

faas_sdk::export_handler!(handle);

/// Never returns; `black_box` keeps the optimizer from proving the loop does nothing.
fn spin_forever() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Allocates 1 MiB chunks forever, writing every byte, until the allocator fails (which aborts).
fn memory_bomb() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = Vec::with_capacity(MIB);
        chunk.resize(MIB, 0xA5);
        hoard.push(std::hint::black_box(chunk));
        std::hint::black_box(&mut hoard);
    }
}

/// 64 MiB of stdout and 1 MiB of stderr, in 1 KiB lines. Write errors (say, a host that closes
/// a full log pipe) are ignored so the request still completes.
fn spam() -> Response {
    let mut line = vec![b'x'; LINE];
    line[LINE - 1] = b'\n';
    {
        let mut out = std::io::stdout().lock();
        for i in 0..(64 * MIB / LINE) {
            let prefix = format!("stdout spam line {i:08} ");
            line[..prefix.len()].copy_from_slice(prefix.as_bytes());
            let _ = out.write_all(&line);
        }
        let _ = out.flush();
    }
    {
        let mut err = std::io::stderr().lock();
        for i in 0..(MIB / LINE) {
            let prefix = format!("stderr spam line {i:08} ");
            line[..prefix.len()].copy_from_slice(prefix.as_bytes());
            let _ = err.write_all(&line);
        }
        let _ = err.flush();
    }
    "spammed".into_response()
}

fn env() -> Response {
    let mut vars: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}\n", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    vars.sort();
    vars.concat().into_response()
}

fn log() -> Response {
    for n in 1..=3 {
        println!("log line {n}");
    }
    eprintln!("log line to stderr");
    "logged".into_response()
}

fn sleep(req: &Request, arg: Option<&str>) -> Response {
    let Some(ms) = arg
        .or_else(|| {
            req.headers()
                .get("x-sleep-ms")
                .and_then(|v| v.to_str().ok())
        })
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return (
            StatusCode::BAD_REQUEST,
            "header x-sleep-ms (milliseconds) is required\n",
        )
            .into_response();
    };
    let deadline = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
    "slept".into_response()
}

fn fetch(req: &Request) -> Response {
    let Some(url) = req
        .headers()
        .get("x-target-url")
        .and_then(|v| v.to_str().ok())
    else {
        return (StatusCode::BAD_REQUEST, "header x-target-url is required\n").into_response();
    };
    let uri: faas_sdk::Uri = match url.parse() {
        Ok(uri) => uri,
        Err(err) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("invalid x-target-url {url:?}: {err}\n"),
            )
                .into_response();
        }
    };
    let request = match faas_sdk::http::Request::get(uri).body(Bytes::new()) {
        Ok(request) => request,
        Err(err) => return (StatusCode::BAD_REQUEST, format!("{err}\n")).into_response(),
    };
    match faas_sdk::send(request) {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let mut text = format!("{status}\n").into_bytes();
            text.extend_from_slice(answer.body());
            let mut resp = Response::new(Bytes::from(text));
            resp.headers_mut()
                .insert("x-upstream-status", status.into());
            resp
        }
        Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    }
}
