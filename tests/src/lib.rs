//! Harness for end-to-end tests: builds the `faas` binary and the guest artifacts, starts
//! `faas up` as a child process on a free loopback port, and talks HTTP to it.
//!
//! Everything here is driven from outside, the way a user runs the platform: no test reaches
//! into the gateway's memory.
#![allow(clippy::unwrap_used)]

pub mod aws;
pub mod cluster;
pub mod fault_proxy;
pub mod moto;
pub mod registry;
pub mod scenarios;
pub mod skip;
pub mod state;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// Builds `bin` of `package` (a debug build, a no-op when it is up to date) and returns its path.
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // What cargo sets for this test process is not the build's environment: ring's build
    // script reruns when CARGO_MANIFEST_DIR changes, and with it everything above ring
    // (rustls, kube, the AWS SDK, our crates), once for `cargo test` and again here.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&key.as_ref())
        {
            command.env_remove(key.as_ref());
        }
    }
    let status = command
        .current_dir(repo_root())
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .status()
        .unwrap_or_else(|e| panic!("run cargo build for the {bin} binary: {e}"));
    assert!(status.success(), "building the {bin} binary failed");
    target_dir().join("debug").join(bin)
}

/// The `faas` binary, built once per test process.
pub fn faas_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_bin("faas-cli", "faas"))
}

/// The `faas-runtime` binary (runtime pods: `serve`, `sidecar`), built once per test process.
pub fn runtime_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_bin("faas-gateway", "faas-runtime"))
}

/// The `faas-gateway` binary, built once per test process.
pub fn gateway_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_bin("faas-gateway", "faas-gateway"))
}

/// A guest artifact built from `examples/` (`hello`, `hostile`, `echo-cgi`, `sqs-consumer`). Built once by
/// `examples/build.sh`; where the wasm targets cannot be installed, the copies committed in
/// `tests/fixtures/` (built from the same sources) are used instead.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<bool> = OnceLock::new();
    let target = if name == "echo-cgi" {
        "wasm32-wasip1"
    } else {
        "wasm32-wasip2"
    };
    // Library crates (components) get their file name from the crate name, `-` as `_`.
    let file = if target == "wasm32-wasip2" {
        name.replace('-', "_")
    } else {
        name.to_owned()
    };
    let built = repo_root()
        .join("examples/target")
        .join(target)
        .join("release")
        .join(format!("{file}.wasm"));
    let ok = *BUILT.get_or_init(|| {
        let status = Command::new("bash")
            .arg(repo_root().join("examples/build.sh"))
            .stdout(Stdio::null())
            .status();
        matches!(status, Ok(s) if s.success())
    });
    if ok && built.exists() {
        return built;
    }
    let fixture = repo_root()
        .join("tests/fixtures")
        .join(format!("{file}.wasm"));
    skip::missing(&format!(
        "examples/build.sh could not build guest {name} (are the wasm targets installed?); \
         using the committed fixture {}",
        fixture.display()
    ));
    assert!(fixture.exists(), "no artifact for guest {name}");
    fixture
}

/// Compiles WAT text (hostile hand-written modules) to a `.wasm` file in `dir`.
pub fn wat_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let bytes = wat::parse_str(text).expect("valid WAT");
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Writes `dir/{name}.yaml` for a WASM function; `extra` is appended under `spec:`
/// (indented by two spaces per line by the caller).
pub fn write_function(dir: &Path, name: &str, artifact: &Path, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let text = format!(
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  runtime:\n    wasm:\n      source: {}\n{extra}",
        artifact.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// How to start a `faas up`.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// Command the process runs under (`ip netns exec NS`).
    pub wrapper: Vec<String>,
    /// State directory (default: a fresh temporary one).
    pub state: Option<PathBuf>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Extra `faas up` arguments.
    pub args: Vec<String>,
    /// Run the builds manifests ask for (tests pass `--no-build` otherwise).
    pub build: bool,
}

/// The lines of the text file at `path`; none when it does not exist (yet).
pub fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A free loopback port (bound, read, released: a test then gives it to a server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `faas up`.
pub struct Faas {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Everything the process wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
    /// The user config directory it records itself in (`FAAS_CONFIG_DIR`): the test's own,
    /// never the user's.
    pub config_dir: PathBuf,
    _state: tempfile::TempDir,
}

impl Faas {
    /// Starts `faas up DIR` on a free port and waits until it says it is listening.
    pub fn start(dir: &Path) -> Faas {
        Self::launch(dir, Launch::default())
    }

    /// Like [`Faas::start`], run through `wrapper` (e.g. `ip netns exec NS`).
    pub fn start_with(dir: &Path, wrapper: &[&str]) -> Faas {
        Self::launch(
            dir,
            Launch {
                wrapper: wrapper.iter().map(|s| (*s).to_owned()).collect(),
                ..Launch::default()
            },
        )
    }

    /// Like [`Faas::start`] with a given state directory (to test restarts).
    pub fn start_in_state(dir: &Path, state: &Path) -> Faas {
        Self::launch(
            dir,
            Launch {
                state: Some(state.to_path_buf()),
                ..Launch::default()
            },
        )
    }

    /// Starts `faas up DIR` as `launch` says.
    pub fn launch(dir: &Path, launch: Launch) -> Faas {
        let state = tempfile::tempdir().unwrap();
        let state_path = launch.state.clone().unwrap_or(state.path().to_path_buf());
        let mut args: Vec<std::ffi::OsString> = vec!["up".into(), dir.into()];
        if !launch.build {
            args.push("--no-build".into());
        }
        args.extend(["--listen", "127.0.0.1:0"].map(Into::into));
        // A short poll unless the test sets its own.
        if !launch.args.iter().any(|a| a == "--watch-interval") {
            args.extend(["--watch-interval", "0.2"].map(Into::into));
        }
        args.push("--state".into());
        args.push(state_path.into());
        Self::spawn(faas_bin(), args, launch, state)
    }

    /// Starts `faas-runtime ROLE ARGS` (`serve` or `sidecar`) on a free loopback port with a
    /// fresh state directory, as `launch` says.
    pub fn runtime(role_args: &[&str], launch: Launch) -> Faas {
        let state = tempfile::tempdir().unwrap();
        let mut args: Vec<std::ffi::OsString> = role_args.iter().map(Into::into).collect();
        args.extend(["--listen", "127.0.0.1:0", "--state"].map(Into::into));
        args.push(state.path().into());
        Self::spawn(runtime_bin(), args, launch, state)
    }

    /// Starts `faas-gateway DIR` (local mode) on a free loopback port with a fresh state
    /// directory, as `launch` says.
    pub fn gateway(dir: &Path, launch: Launch) -> Faas {
        let state = tempfile::tempdir().unwrap();
        let mut args: Vec<std::ffi::OsString> = vec![dir.into()];
        args.extend(["--listen", "127.0.0.1:0", "--state"].map(Into::into));
        args.push(state.path().into());
        Self::spawn(gateway_bin(), args, launch, state)
    }

    fn spawn(
        program: &Path,
        args: Vec<std::ffi::OsString>,
        launch: Launch,
        state: tempfile::TempDir,
    ) -> Faas {
        let config_dir = launch
            .env
            .iter()
            .find(|(k, _)| k == "FAAS_CONFIG_DIR")
            .map_or_else(|| state.path().join("faas-config"), |(_, v)| v.into());
        let mut command = if launch.wrapper.is_empty() {
            Command::new(program)
        } else {
            let mut c = Command::new(&launch.wrapper[0]);
            c.args(&launch.wrapper[1..]).arg(program);
            c
        };
        command
            .args(args)
            .args(&launch.args)
            .env("RUST_LOG", "info")
            // AWS calls (SQS triggers) never leave loopback in tests: every endpoint is a
            // closed loopback port unless a test points SQS at its moto server, and instance
            // metadata (169.254.169.254) is never asked for credentials or a region.
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("FAAS_CONFIG_DIR", &config_dir)
            .envs(launch.env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("faas: listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "{} did not start; stderr:\n{}",
                    program.display(),
                    stderr.lock().unwrap()
                );
            }
        };
        Faas {
            child,
            base,
            stderr,
            config_dir,
            _state: state,
        }
    }

    /// Full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// Sends SIGKILL: the platform dies without running anything of its own.
    pub fn sigkill(&self) {
        self.signal("-KILL");
    }

    fn signal(&self, which: &str) {
        let status = Command::new("kill")
            .args([which, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (bounded), returning its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Polls `check` until it holds (bounded), for state that converges (reloads).
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out waiting for: {what}\nstderr:\n{}",
            self.stderr.lock().unwrap()
        );
    }

    /// Waits until `function` has `in_flight` calls running and `waiting` queued for a slot
    /// (its summary, `GET /system/functions/NAME`), so a test orders its calls on the
    /// platform's state instead of on sleeps that a loaded machine outlasts.
    pub async fn until_calls(&self, function: &str, in_flight: u64, waiting: u64) {
        let url = self.url(&format!("/system/functions/{function}"));
        self.eventually(
            &format!("{function}: {in_flight} call(s) in flight, {waiting} waiting"),
            || {
                let url = url.clone();
                async move {
                    let summary = get(&url).await.json()["summary"].clone();
                    summary["inFlight"] == in_flight && summary["waiting"] == waiting
                }
            },
        )
        .await;
    }

    /// Run `id`'s record once it has ended (bounded: 30 s), from `GET /system/runs/{id}`.
    pub async fn run_ended(&self, id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = get(&self.url(&format!("/system/runs/{id}"))).await;
            let record = if reply.status == 200 {
                reply.json()
            } else {
                serde_json::Value::Null
            };
            if !matches!(
                record["status"]["phase"].as_str(),
                None | Some("Running" | "Pending")
            ) {
                return record;
            }
            assert!(Instant::now() < deadline, "run {id} did not end: {record}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `faas deploy --no-build -f MANIFEST` against this gateway.
    pub fn deploy(&self, manifest: &Path) -> std::process::Output {
        self.cli()
            .args(["deploy", "--no-build", "-f"])
            .arg(manifest)
            .output()
            .unwrap()
    }

    /// The process's `faas` CLI pointing at this gateway.
    pub fn cli(&self) -> Command {
        let mut c = Command::new(faas_bin());
        c.env("FAAS_GATEWAY", &self.base)
            .env("FAAS_CONFIG_DIR", &self.config_dir);
        c
    }
}

/// `node SCRIPT ARGS…` in `tests/ui`: a dashboard check in Debian's Chromium driven by
/// playwright-core, run off the async runtime after checking both are installed.
pub async fn browser_script(script: &str, args: Vec<String>) -> std::process::Output {
    let ui = repo_root().join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").exists() && Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Chromium and playwright-core: apt-get install chromium; (cd tests/ui && npm ci) (scripts/test.sh does both)"
    );
    let script = script.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(&ui)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// A changing command's stderr after its first line, which must name the target it acts on
/// (`→ local http://…`): the CLI says where a change goes before making it.
pub fn after_target(stderr: &str) -> &str {
    let (first, rest) = stderr.split_once('\n').unwrap_or((stderr, ""));
    assert!(
        first.starts_with("→ "),
        "a changing command must name its target first:\n{stderr}"
    );
    rest
}

impl Drop for Faas {
    /// Stops it as a user would (SIGTERM: it stops its function processes), and kills it
    /// only when that takes too long. A SIGKILL alone leaves its function processes running,
    /// holding their ports, for the tests after it.
    fn drop(&mut self) {
        // Already ended (and reaped): its pid may be another process's by now.
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
}

/// Sends one request.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = client
        .request(builder.body(Full::new(body.into())).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// `GET url`.
pub async fn get(url: &str) -> Reply {
    send("GET", url, &[], Bytes::new()).await
}

/// The header every state-changing management request carries (what the `faas` CLI and the
/// dashboard send; `faas_gateway::guard::REQUEST_HEADER`).
pub const MANAGE: (&str, &str) = ("x-faas-request", "1");
