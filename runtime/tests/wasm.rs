//! The WASM executor on its own: compile cache, artifact checks, isolation, limits.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_api::Limits;
use faas_api::network::OutboundPolicy;
use faas_runtime::wasm::{FunctionSettings, LoadError, WasmConfig, WasmRuntime};
use faas_runtime::{CallContext, InvokeError, Invoker};
use http_body_util::BodyExt;

#[path = "support/guest.rs"]
mod support;

fn fixture(name: &str) -> Bytes {
    Bytes::from(std::fs::read(support::guest_path(name)).unwrap())
}

fn settings(limits: Limits) -> FunctionSettings {
    FunctionSettings {
        name: "t".into(),
        limits,
        env: vec![("GREETING".into(), "hi".into())],
        outbound: Arc::new(OutboundPolicy::deny_all()),
        dirs: vec![],
        invocation_env: vec![],
    }
}

fn ctx() -> CallContext {
    CallContext::new("test", "t")
}

fn request(path: &str) -> http::Request<Bytes> {
    http::Request::builder()
        .uri(path)
        .header("host", "localhost")
        .body(Bytes::new())
        .unwrap()
}

async fn body_of(response: http::Response<faas_runtime::ResponseBody>) -> String {
    String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned()
}

#[tokio::test]
async fn compiled_code_is_shared_in_memory_and_reused_from_disk() {
    let cache = tempfile::tempdir().unwrap();
    let config = WasmConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..WasmConfig::default()
    };
    let runtime = WasmRuntime::new(config.clone()).unwrap();
    let first = runtime.load(fixture("hello"), None).await.unwrap();
    assert!(!first.from_cache);
    let again = runtime.load(fixture("hello"), None).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "identical artifacts share one compiled artifact"
    );
    drop((first, again, runtime));

    // A new process (new engine) with the same cache directory skips compilation.
    let restarted = WasmRuntime::new(config).unwrap();
    let cached = restarted.load(fixture("hello"), None).await.unwrap();
    assert!(cached.from_cache);
    let function = restarted.function(cached, settings(Limits::default()));
    let response = function.invoke(ctx(), request("/x")).await.unwrap();
    assert_eq!(body_of(response).await, "Hello from faas: GET /x\n");
}

#[tokio::test]
async fn a_corrupt_cache_entry_is_replaced_not_fatal() {
    let cache = tempfile::tempdir().unwrap();
    let config = WasmConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..WasmConfig::default()
    };
    let runtime = WasmRuntime::new(config.clone()).unwrap();
    let sha = runtime
        .load(fixture("hello"), None)
        .await
        .unwrap()
        .sha256
        .clone();
    drop(runtime);
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains(&sha) {
            std::fs::write(path, b"garbage").unwrap();
        }
    }
    let runtime = WasmRuntime::new(config).unwrap();
    let loaded = runtime.load(fixture("hello"), None).await.unwrap();
    assert!(
        !loaded.from_cache,
        "the corrupt entry was discarded and the artifact recompiled"
    );
}

#[tokio::test]
async fn artifacts_are_checked_before_they_serve() {
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let not_wasm = runtime
        .load(Bytes::from_static(b"PK\x03\x04 a zip file"), None)
        .await;
    assert!(matches!(not_wasm, Err(LoadError::NotWasm(_))));

    let wrong = runtime.load(fixture("hello"), Some(&"0".repeat(64))).await;
    assert!(matches!(wrong, Err(LoadError::Sha256Mismatch { .. })));

    // A valid module that is not a command: no `_start`.
    let library = Bytes::from(wat::parse_str("(module (func (export \"f\")))").unwrap());
    let err = runtime.load(library, None).await.err().unwrap();
    assert!(err.to_string().contains("_start"), "{err}");

    // A component that does not export wasi:http/incoming-handler.
    let empty = Bytes::from(wat::parse_str("(component)").unwrap());
    let err = runtime.load(empty, None).await.err().unwrap();
    assert!(
        err.to_string().contains("wasi:http/incoming-handler"),
        "{err}"
    );

    // Truncated bytes fail to compile with a reason.
    let full = fixture("hello");
    let truncated = full.slice(..full.len() / 2);
    assert!(matches!(
        runtime.load(truncated, None).await,
        Err(LoadError::Compile(_))
    ));
}

#[tokio::test]
async fn each_request_gets_a_fresh_instance() {
    // A CGI module that increments a global and prints it: a reused instance would print 2.
    let counter = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (global $n (mut i32) (i32.const 48))
      (data (i32.const 64) "Content-Type: text/plain\n\nX")
      (func (export "_start")
        (global.set $n (i32.add (global.get $n) (i32.const 1)))
        (i32.store8 (i32.const 90) (global.get $n))
        (i32.store (i32.const 0) (i32.const 64))
        (i32.store (i32.const 4) (i32.const 27))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let artifact = runtime
        .load(Bytes::from(wat::parse_str(counter).unwrap()), None)
        .await
        .unwrap();
    let function = runtime.function(artifact, settings(Limits::default()));
    for _ in 0..3 {
        let response = function.invoke(ctx(), request("/")).await.unwrap();
        assert_eq!(body_of(response).await, "1");
    }
}

#[tokio::test]
async fn limits_map_to_the_right_errors() {
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let limits = Limits {
        timeout: Duration::from_millis(300),
        memory_bytes: 8 << 20,
        ..Limits::default()
    };
    let spin = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#,
    )
    .unwrap();
    let function = runtime.function(
        runtime.load(Bytes::from(spin), None).await.unwrap(),
        settings(limits),
    );
    let err = function.invoke(ctx(), request("/")).await.err().unwrap();
    assert!(matches!(err, InvokeError::Timeout(_)), "{err}");
    assert_eq!(err.status(), 504);

    let grow = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start") (drop (memory.grow (i32.const 1000)))))"#).unwrap();
    let function = runtime.function(
        runtime.load(Bytes::from(grow), None).await.unwrap(),
        settings(limits),
    );
    let err = function.invoke(ctx(), request("/")).await.err().unwrap();
    assert!(
        matches!(err, InvokeError::MemoryLimit { limit } if limit == 8 << 20),
        "{err}"
    );

    let exit = wat::parse_str(
        r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1) (func (export "_start") (call $exit (i32.const 3))))"#,
    )
    .unwrap();
    let function = runtime.function(
        runtime.load(Bytes::from(exit), None).await.unwrap(),
        settings(limits),
    );
    let err = function.invoke(ctx(), request("/")).await.err().unwrap();
    assert!(err.to_string().contains("exited with status 3"), "{err}");
    assert_eq!(err.status(), 502);

    // A trap says what trapped and where: its innermost frames, by name.
    let trap = wat::parse_str(
        r#"(module (memory (export "memory") 1)
      (func $inner unreachable)
      (func $outer call $inner)
      (func (export "_start") call $outer))"#,
    )
    .unwrap();
    let function = runtime.function(
        runtime.load(Bytes::from(trap), None).await.unwrap(),
        settings(limits),
    );
    let err = function.invoke(ctx(), request("/")).await.err().unwrap();
    let message = err.to_string();
    assert!(matches!(err, InvokeError::Trap(_)), "{err}");
    assert!(message.contains("unreachable"), "{message}");
    let (inner, outer) = (message.find("!inner"), message.find("!outer"));
    assert!(
        inner.is_some() && outer.is_some() && inner < outer,
        "innermost frame first: {message}"
    );
    assert!(
        !message.contains("..."),
        "three frames, all shown: {message}"
    );

    // Deep in a recursion, only the innermost frames are captured (wasmtime would take 20
    // on every trap): ten frames, then a mark that there were more, all on one line.
    let deep = wat::parse_str(
        r#"(module (memory (export "memory") 1)
      (func $down (param i32)
        (if (i32.eqz (local.get 0)) (then unreachable))
        (call $down (i32.sub (local.get 0) (i32.const 1))))
      (func (export "_start") (call $down (i32.const 50))))"#,
    )
    .unwrap();
    let function = runtime.function(
        runtime.load(Bytes::from(deep), None).await.unwrap(),
        settings(limits),
    );
    let message = function
        .invoke(ctx(), request("/"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert_eq!(message.matches("!down").count(), 10, "{message}");
    assert!(message.ends_with(" <- ..."), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

/// Variables of an invocation: fixed ones here (the function's role's credentials come
/// from `faas-identity`, tested with STS there and end to end).
struct Credentials {
    key: &'static str,
    problem: Option<&'static str>,
}

impl faas_invoke::InvocationEnv for Credentials {
    fn each(&self, put: &mut dyn FnMut(&str, &str)) {
        put("AWS_ACCESS_KEY_ID", self.key);
        put("AWS_SESSION_TOKEN", "token");
    }

    fn problem(&self) -> Option<faas_invoke::Degradation> {
        self.problem
            .map(|p| faas_invoke::Degradation::identity_unavailable(p.to_owned()))
    }
}

#[tokio::test]
async fn invocation_variables_reach_only_their_own_functions_guest_after_its_env() {
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let hostile = runtime.load(fixture("hostile"), None).await.unwrap();
    let with = |key: &'static str, problem| FunctionSettings {
        // A same-named spec.env entry loses to the invocation's.
        env: vec![("AWS_ACCESS_KEY_ID".into(), "from-spec-env".into())],
        invocation_env: vec![Arc::new(Credentials { key, problem })],
        ..settings(Limits::default())
    };
    let orders = runtime.function(hostile.clone(), with("ASIAORDERS", None));
    let billing = runtime.function(
        hostile.clone(),
        with("ASIABILLING", Some("cannot assume role billing")),
    );
    let plain = runtime.function(hostile, settings(Limits::default()));
    let env_of = |f: &faas_runtime::wasm::WasmFunction| {
        let f = f.clone();
        async move { body_of(f.invoke(ctx(), request("/env")).await.unwrap()).await }
    };
    let seen = env_of(&orders).await;
    assert!(seen.contains("AWS_ACCESS_KEY_ID=ASIAORDERS\n"), "{seen}");
    assert!(seen.contains("AWS_SESSION_TOKEN=token\n"), "{seen}");
    assert!(!seen.contains("ASIABILLING"), "{seen}");
    assert!(
        env_of(&billing)
            .await
            .contains("AWS_ACCESS_KEY_ID=ASIABILLING\n")
    );
    let seen = env_of(&plain).await;
    assert!(!seen.contains("AWS_"), "no role, no credentials: {seen}");
    assert!(seen.contains("GREETING=hi"), "{seen}");
    // What is wrong with an identity degrades its function, saying so.
    assert_eq!(orders.degraded(), None);
    let degraded = billing.degraded().unwrap();
    assert_eq!(degraded.reason, "IdentityUnavailable");
    assert_eq!(degraded.message, "cannot assume role billing");
}
