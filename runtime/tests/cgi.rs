//! CGI against hostile requests and hostile scripts, for both executors that speak it: a
//! WASI command module and a process per request.
//!
//! - httpoxy: a `Proxy` request header must never reach the function as `HTTP_PROXY`.
//! - A script's background processes die with the request, and one holding stdout or
//!   stderr open cannot hold the request past its timeout.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_api::Limits;
use faas_api::network::OutboundPolicy;
use faas_runtime::process::cgi::CgiProcess;
use faas_runtime::process::{ProcessFunction, ProcessSpec};
use faas_runtime::wasm::{FunctionSettings, WasmConfig, WasmRuntime};
use faas_runtime::{CallContext, InvokeError, Invoker};
use http_body_util::BodyExt;

/// A CGI request carrying a `Proxy` header (what an httpoxy attacker sends) and a harmless
/// header to show headers do arrive.
fn hostile_request() -> http::Request<Bytes> {
    http::Request::builder()
        .uri("/")
        .header("host", "localhost")
        .header("proxy", "http://127.0.0.1:9/")
        .header("x-test", "one")
        .body(Bytes::new())
        .unwrap()
}

async fn body_of(response: http::Response<faas_runtime::ResponseBody>) -> String {
    String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned()
}

/// A WASI command module that answers with its whole environment (`KEY=VALUE`, NUL
/// separated): what a CGI module sees. One iovec per `fd_write`: wasmtime's preview1 writes
/// only the first non-empty one of a call.
const ENV_DUMP: &str = r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data (i32.const 0) "Content-Type: text/plain\n\n")
  (func (export "_start")
    (drop (call $sizes (i32.const 100) (i32.const 104)))
    (drop (call $get (i32.const 1024) (i32.const 16384)))
    (i32.store (i32.const 200) (i32.const 0))
    (i32.store (i32.const 204) (i32.const 26))
    (drop (call $write (i32.const 1) (i32.const 200) (i32.const 1) (i32.const 300)))
    (i32.store (i32.const 200) (i32.const 16384))
    (i32.store (i32.const 204) (i32.load (i32.const 104)))
    (drop (call $write (i32.const 1) (i32.const 200) (i32.const 1) (i32.const 300)))))"#;

#[tokio::test]
async fn a_cgi_module_never_sees_a_proxy_header_as_http_proxy() {
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let artifact = runtime
        .load(Bytes::from(wat::parse_str(ENV_DUMP).unwrap()), None)
        .await
        .unwrap();
    let function = runtime.function(
        artifact,
        FunctionSettings {
            name: "t".into(),
            limits: Limits::default(),
            env: vec![],
            outbound: Arc::new(OutboundPolicy::deny_all()),
            dirs: vec![],
            invocation_env: vec![],
        },
    );
    let response = function
        .invoke(CallContext::new("test", "t"), hostile_request())
        .await
        .unwrap();
    let env = body_of(response).await;
    let vars: Vec<&str> = env.split('\0').collect();
    assert!(vars.contains(&"HTTP_X_TEST=one"), "{vars:?}");
    assert!(
        !vars.iter().any(|v| v.starts_with("HTTP_PROXY=")),
        "httpoxy: {vars:?}"
    );
}

fn spec(dir: &Path, script: &str, timeout: Duration) -> ProcessSpec {
    let path = dir.join("cgi.sh");
    std::fs::write(&path, script).unwrap();
    ProcessSpec {
        started: Default::default(),
        name: "proc".into(),
        argv: vec!["sh".into(), path.to_string_lossy().into_owned()],
        working_dir: Some(dir.to_path_buf()),
        env: vec![],
        port: None,
        readiness_path: None,
        limits: Limits {
            timeout,
            ..Limits::default()
        },
    }
}

#[tokio::test]
async fn a_cgi_script_never_sees_a_proxy_header_as_http_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let script = "printf 'Content-Type: text/plain\\n\\n'\n\
                  echo \"proxy=${HTTP_PROXY-unset} test=${HTTP_X_TEST-unset}\"\n";
    let f = ProcessFunction::Cgi(CgiProcess::new(spec(
        dir.path(),
        script,
        Duration::from_secs(10),
    )));
    let response = f
        .invoke(CallContext::new("t", "proc"), hostile_request())
        .await
        .unwrap();
    assert_eq!(body_of(response).await, "proxy=unset test=one\n");
}

/// Whether process `pid` is gone (or a zombie waiting for whoever reaps orphans here).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // pid (comm) STATE ...: comm may hold spaces, the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The pid a script wrote into `dir/bg.pid`.
async fn background_pid(dir: &Path) -> u32 {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(dir.join("bg.pid"))
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the script did not write its background pid");
}

/// Polls (bounded) until `pid` is dead.
async fn assert_dies(pid: u32) {
    for _ in 0..100 {
        if dead(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("background process {pid} outlived its request");
}

#[tokio::test]
async fn a_background_process_holding_stdout_dies_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // Answers, then leaves a sleeper holding stdout: the response never ends on its own.
    let script = "printf 'Content-Type: text/plain\\n\\nok\\n'\n\
                  sleep 600 &\n\
                  echo $! > bg.pid\n";
    let f = ProcessFunction::Cgi(CgiProcess::new(spec(
        dir.path(),
        script,
        Duration::from_secs(1),
    )));
    let answer = tokio::time::timeout(
        Duration::from_secs(60),
        f.invoke(CallContext::new("t", "proc"), http_request()),
    )
    .await
    .expect("the request ends at its timeout, not when the sleeper does");
    let Err(err) = answer else {
        panic!("a response that never ended was served")
    };
    assert!(matches!(err, InvokeError::Timeout(_)), "{err}");
    assert_dies(background_pid(dir.path()).await).await;
}

#[tokio::test]
async fn a_background_process_holding_stderr_does_not_hold_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    // stdout is closed for the sleeper; stderr is still the request's log pipe.
    let script = "sleep 600 >/dev/null &\n\
                  echo $! > bg.pid\n\
                  printf 'Content-Type: text/plain\\n\\nok\\n'\n";
    let f = ProcessFunction::Cgi(CgiProcess::new(spec(
        dir.path(),
        script,
        Duration::from_secs(10),
    )));
    let answer = tokio::time::timeout(
        Duration::from_secs(60),
        f.invoke(CallContext::new("t", "proc"), http_request()),
    )
    .await
    .expect("the answer does not wait for a background process's stderr");
    assert_eq!(body_of(answer.unwrap()).await, "ok\n");
    assert_dies(background_pid(dir.path()).await).await;
}

fn http_request() -> http::Request<Bytes> {
    http::Request::builder()
        .uri("/")
        .header("host", "localhost")
        .body(Bytes::new())
        .unwrap()
}
