//! Functions of different teams share one runtime process (a pool pod): what one of them does
//! must not reach the others' code or capacity. Each test is a hostile guest and a neighbour.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use faas_api::Limits;
use faas_api::network::OutboundPolicy;
use faas_runtime::guest_log::LogRate;
use faas_runtime::wasm::{DiskCache, FunctionSettings, WasmConfig, WasmRuntime, sha256_hex};
use faas_runtime::{CallContext, InvokeError, Invoker};
use http_body_util::BodyExt;

#[path = "support/guest.rs"]
mod support;

fn fixture(name: &str) -> Bytes {
    Bytes::from(std::fs::read(support::guest_path(name)).unwrap())
}

fn settings(name: &str, limits: Limits) -> FunctionSettings {
    FunctionSettings {
        name: name.into(),
        limits,
        env: vec![],
        outbound: Arc::new(OutboundPolicy::deny_all()),
        dirs: vec![],
        invocation_env: vec![],
    }
}

fn request(path: &str) -> http::Request<Bytes> {
    http::Request::builder()
        .uri(path)
        .header("host", "localhost")
        .body(Bytes::new())
        .unwrap()
}

async fn call(function: &impl Invoker, path: &str) -> Result<String, InvokeError> {
    let response = function
        .invoke(CallContext::new("test", "t"), request(path))
        .await?;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The compiled-code cache entry of `sha256` in `cache` (there is exactly one).
fn entry_of(cache: &std::path::Path, sha256: &str) -> std::path::PathBuf {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(sha256) && name.ends_with(".cwasm")
        })
        .unwrap_or_else(|| panic!("no cache entry for {sha256}"))
}

#[tokio::test]
async fn a_planted_cache_entry_is_recompiled_never_executed() {
    let state = tempfile::tempdir().unwrap();
    let cache = state.path().join("cache");
    let config = WasmConfig {
        cache_dir: Some(cache.clone()),
        ..WasmConfig::default()
    };
    let hello_sha = sha256_hex(&fixture("hello"));
    // The attacker's code, compiled by this very engine: a genuine entry of another artifact.
    let runtime = WasmRuntime::new(config.clone()).unwrap();
    let hostile = runtime.load(fixture("hostile"), None).await.unwrap();
    let foreign = std::fs::read(entry_of(&cache, &hostile.sha256)).unwrap();
    drop((hostile, runtime));
    // The same code without whatever the cache wraps it in: a bare `.cwasm`.
    let bare = if foreign.starts_with(b"faascw1\n") {
        foreign[8 + 32..].to_vec()
    } else {
        foreign.clone()
    };
    let key = DiskCache::key_path(&cache);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the cache key is private");
    }

    for (what, planted) in [
        ("another artifact's entry", foreign.clone()),
        ("a bare .cwasm of another artifact", bare),
        ("garbage", b"\x7fELF garbage".to_vec()),
    ] {
        // Planted where hello's compiled code is expected, before the process starts.
        let runtime = WasmRuntime::new(config.clone()).unwrap();
        let expected = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains(&hello_sha));
        let path = match expected {
            Some(path) => path,
            None => {
                // First round: learn the name by compiling hello once.
                drop(runtime.load(fixture("hello"), None).await.unwrap());
                entry_of(&cache, &hello_sha)
            }
        };
        drop(runtime);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&planted)
            .unwrap();

        let runtime = WasmRuntime::new(config.clone()).unwrap();
        let loaded = runtime.load(fixture("hello"), None).await.unwrap();
        assert!(!loaded.from_cache, "{what}: the planted entry was used");
        let function = runtime.function(loaded, settings("hello", Limits::default()));
        // hostile answers `/ok` with "ok"; hello greets whatever the path.
        let served = call(&function, "/ok").await.unwrap();
        assert_eq!(served, "Hello from faas: GET /ok\n", "{what}");
        assert_ne!(
            std::fs::read(&path).unwrap(),
            planted,
            "{what}: the entry was replaced"
        );
        drop((function, runtime));

        // The replaced entry is genuine: the next process loads it from the cache.
        let runtime = WasmRuntime::new(config.clone()).unwrap();
        let loaded = runtime.load(fixture("hello"), None).await.unwrap();
        assert!(loaded.from_cache, "{what}: the rewritten entry verifies");
    }
}

/// A `wasi:http/proxy` component of `memories` core instances, each with a memory of
/// `pages` 64 KiB pages, whose handler returns without answering.
fn many_memories(memories: usize, pages: u32) -> Bytes {
    let extra: String = (1..memories)
        .map(|_| "  (core instance (instantiate $mem))\n".to_owned())
        .collect();
    let wat = format!(
        r#"(component
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $types "incoming-request" (type $req))
  (alias export $types "response-outparam" (type $out))
  (core module $mem (memory {pages}))
  (core module $main
    (memory (export "memory") {pages})
    (func (export "handle") (param i32 i32)))
  (core instance $m0 (instantiate $main))
{extra}
  (func $handle (param "request" (own $req)) (param "response-out" (own $out))
    (canon lift (core func $m0 "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))"#
    );
    Bytes::from(wat::parse_str(&wat).unwrap())
}

#[tokio::test]
async fn sixteen_memories_at_the_cap_fail_alone() {
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    // 16 memories of 16 MiB each: every one at the cap, 256 MiB together.
    let hog = runtime.function(
        runtime.load(many_memories(16, 256), None).await.unwrap(),
        settings("hog", limits),
    );
    let neighbour = runtime.function(
        runtime.load(fixture("hello"), None).await.unwrap(),
        settings("neighbour", limits),
    );
    for _ in 0..3 {
        let err = call(&hog, "/").await.err().unwrap();
        assert!(
            matches!(err, InvokeError::MemoryLimit { limit } if limit == 16 << 20),
            "the store's memories together are capped: {err}"
        );
        assert_eq!(
            call(&neighbour, "/n").await.unwrap(),
            "Hello from faas: GET /n\n"
        );
    }
    // Within the cap together, the same shape runs (it answers nothing: 502, not 500).
    let fits = runtime.function(
        runtime.load(many_memories(16, 16), None).await.unwrap(),
        settings("fits", limits),
    );
    assert!(matches!(
        call(&fits, "/").await,
        Err(InvokeError::NoResponse)
    ));
}

/// A `wasi:http/proxy` component whose handler creates `n` `fields` and keeps them all.
fn fields_hoarder(n: u32) -> Bytes {
    let wat = format!(
        r#"(component
  (import "wasi:http/types@0.2.0" (instance $types
    (export "fields" (type $fields (sub resource)))
    (export "[constructor]fields" (func (result (own $fields))))
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $types "incoming-request" (type $req))
  (alias export $types "response-outparam" (type $out))
  (alias export $types "[constructor]fields" (func $new-fields))
  (core func $new (canon lower (func $new-fields)))
  (core instance $host (export "new-fields" (func $new)))
  (core module $main
    (import "host" "new-fields" (func $new (result i32)))
    (func (export "handle") (param i32 i32)
      (local $i i32)
      (loop $again
        (drop (call $new))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $again (i32.lt_u (local.get $i) (i32.const {n}))))))
  (core instance $m0 (instantiate $main (with "host" (instance $host))))
  (func $handle (param "request" (own $req)) (param "response-out" (own $out))
    (canon lift (core func $m0 "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))"#
    );
    Bytes::from(wat::parse_str(&wat).unwrap())
}

#[tokio::test]
async fn a_guest_creating_100k_fields_fails_alone() {
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let hoarder = runtime.function(
        runtime.load(fields_hoarder(100_000), None).await.unwrap(),
        settings("hoarder", Limits::default()),
    );
    let neighbour = runtime.function(
        runtime.load(fixture("hello"), None).await.unwrap(),
        settings("neighbour", Limits::default()),
    );
    let (hoarded, served) = tokio::join!(call(&hoarder, "/"), call(&neighbour, "/n"));
    let err = hoarded.err().unwrap();
    assert!(
        matches!(&err, InvokeError::Trap(msg) if msg.contains("resource table")),
        "host resources per instance are bounded: {err}"
    );
    assert_eq!(served.unwrap(), "Hello from faas: GET /n\n");
    // Far fewer than wasmtime's own limit on guest handles (100k per store), still more
    // than any request needs: each could hold a full header map of host memory.
    let thousands = runtime.function(
        runtime.load(fields_hoarder(5_000), None).await.unwrap(),
        settings("thousands", Limits::default()),
    );
    let err = call(&thousands, "/").await.err().unwrap();
    assert!(
        matches!(&err, InvokeError::Trap(msg) if msg.contains("resource table")),
        "{err}"
    );
    // A guest within the bound is untouched.
    let modest = runtime.function(
        runtime.load(fields_hoarder(500), None).await.unwrap(),
        settings("modest", Limits::default()),
    );
    assert!(matches!(
        call(&modest, "/").await,
        Err(InvokeError::NoResponse)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_function_cannot_hold_every_instance_slot() {
    let runtime = WasmRuntime::new(WasmConfig {
        max_instances: 8,
        ..WasmConfig::default()
    })
    .unwrap();
    let hostile = runtime.load(fixture("hostile"), None).await.unwrap();
    let greedy = runtime.function(hostile, settings("greedy", Limits::default()));
    let neighbour = runtime.function(
        runtime.load(fixture("hello"), None).await.unwrap(),
        settings("neighbour", Limits::default()),
    );
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let greedy = greedy.clone();
            tokio::spawn(async move {
                let request = http::Request::builder()
                    .uri("/sleep")
                    .header("host", "localhost")
                    .header("x-sleep-ms", "4000")
                    .body(Bytes::new())
                    .unwrap();
                greedy
                    .invoke(CallContext::new("test", "t"), request)
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    // Those over the function's share (a quarter of 8 slots) are refused at once, while the
    // share sleeps: wait for six refusals (a sleeper finishing first fails the test).
    let mut refused = 0;
    let mut pending = calls;
    while refused < 6 {
        let mut next = Vec::new();
        for call in pending {
            if !call.is_finished() {
                next.push(call);
                continue;
            }
            let err = call.await.unwrap().expect_err("refused, not served");
            assert_eq!(err.status(), 503, "{err}");
            assert!(err.to_string().contains("share"), "{err}");
            refused += 1;
        }
        pending = next;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let still = pending;
    assert_eq!(refused, 6, "only the function's share runs at once");
    // ...while the neighbour still finds a slot.
    assert_eq!(
        call(&neighbour, "/n").await.unwrap(),
        "Hello from faas: GET /n\n"
    );
    for call in still {
        assert_eq!(call.await.unwrap().unwrap(), 200);
    }
}

/// Lines written through `tracing`, kept for inspection.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn a_log_flood_does_not_suppress_another_functions_lines() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // 64 KiB of burst and (practically) no refill: what one function may log here.
    let burst: u64 = 64 << 10;
    let runtime = WasmRuntime::new(WasmConfig {
        log_rate: LogRate {
            bytes_per_second: 1,
            burst_bytes: burst,
        },
        ..WasmConfig::default()
    })
    .unwrap();
    let hostile = runtime.load(fixture("hostile"), None).await.unwrap();
    let flood = runtime.function(Arc::clone(&hostile), settings("flood", Limits::default()));
    let quiet = runtime.function(hostile, settings("quiet", Limits::default()));
    // Each call logs its whole per-invocation budget of 1 KiB lines.
    for _ in 0..5 {
        assert_eq!(call(&flood, "/spam").await.unwrap(), "spammed");
    }
    assert_eq!(call(&quiet, "/log").await.unwrap(), "logged");
    // The last line of a call is logged when its store is dropped, which may be just after
    // the answer: wait (bounded) for all four.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while captured
        .lines()
        .iter()
        .filter(|l| l.contains("function=quiet") && l.contains("log line"))
        .count()
        < 4
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let lines = captured.lines();
    let of = |function: &str, text: &str| {
        lines
            .iter()
            .filter(|l| l.contains(&format!("function={function}")) && l.contains(text))
            .count()
    };
    let flooded = of("flood", "spam line");
    assert!(flooded > 0, "the flood logs within its rate");
    assert!(
        (flooded as u64) * 1024 <= burst,
        "the flood logged {flooded} KiB, over its rate's burst"
    );
    assert_eq!(
        of("quiet", "log line"),
        4,
        "{:#?}",
        &lines[lines.len().saturating_sub(8)..]
    );
    // Announced (at most once per ten seconds: see guest_log's unit tests), and counted.
    assert!(
        of("flood", "log rate") >= 1,
        "a notice says lines were dropped"
    );
    assert!(runtime.log_limits().dropped_lines("flood") > 0);
    assert_eq!(runtime.log_limits().dropped_lines("quiet"), 0);
}
