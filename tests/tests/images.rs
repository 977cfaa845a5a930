//! The three images of `docker/`, built for real and checked against what runs them.
//!
//! The production Dockerfiles (a `rust:1.95-bookworm` release build, then distroless
//! `cc-debian12:nonroot`) need the network and a container engine; this test builds the same
//! images with buildah `FROM scratch`, from the debug binaries of this test run, the shared
//! libraries `ldd` names (with the dynamic loader) and the machine's CA certificates, and reads
//! the rest from the Dockerfiles themselves: which package and binary the build stage
//! compiles, where the final stage copies it, USER, WORKDIR, EXPOSE, ENTRYPOINT. Then, for
//! each image:
//!
//! - its config (read from the committed OCI layout) is what the Dockerfile says;
//! - the libraries the binary links are ones distroless `cc` ships (a new system library
//!   would build fine and fail in the pod);
//! - its binary runs from the unpacked image, `chroot`ed as the image's user: the entrypoint
//!   path, the user and the copied libraries are complete;
//! - for the runtime image, the controller's rendering (`faas_controller::render`: a WASM
//!   pool and a Lambda handler's sidecar) runs it as the image's user, on exactly its exposed
//!   ports, with arguments its binary accepts, and with no probe or hook that needs a shell.
//!
//! The chart's side (the controller's and the gateway's Deployments against the same
//! Dockerfiles) is checked in `tests/chart/test_chart.py`.
//!
//! Needs root (buildah's storage, chroot) and buildah (`scripts/test.sh` installs it): skipped,
//! saying so, when not root; failing, saying why, when root and buildah is missing.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use faas_api::Function;
use faas_controller::render::ClusterDefaults;
use faas_controller::render::{pool, workload};
use faas_e2e::repo_root;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

/// Where distroless images keep the CA bundle; the scratch images get the machine's.
const CA_CERTIFICATES: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The only base the scratch images stand in for: glibc and libgcc, no shell.
const BASE: &str = "gcr.io/distroless/cc-debian12:nonroot";

/// Shared libraries distroless `cc-debian12` has: glibc (with its loader) and libgcc_s, plus
/// libstdc++ and libgomp. A binary needing any other would start here and not in a pod.
const BASE_LIBRARIES: &[&str] = &[
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libresolv.so.2",
    "libutil.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libgomp.so.1",
];

#[test]
fn the_controller_image_runs_its_binary_as_the_dockerfile_says() {
    let Some(image) = Image::build("controller") else {
        return;
    };
    image.runs(&["--version"]);
}

#[test]
fn the_gateway_image_runs_its_binary_as_the_dockerfile_says() {
    let Some(image) = Image::build("gateway") else {
        return;
    };
    image.runs(&["--version"]);
}

#[test]
fn the_runtime_image_runs_as_the_controller_renders_it() {
    let Some(image) = Image::build("runtime") else {
        return;
    };
    image.runs(&["--version"]);
    let defaults = ClusterDefaults {
        runtime_image: "registry.example.com/faas-runtime:0.1.0".to_owned(),
        ..ClusterDefaults::default()
    };
    let wasm = function(
        serde_json::json!({"runtime": {"wasm": {"source": "configmap://hello/hello.wasm"}}}),
    );
    let lambda = function(serde_json::json!({
        "runtime": {"container": {"image": "registry.example.com/orders:1.2", "mode": "lambda"}}
    }));
    let pool_pod = pool::pool_objects(&pool::pool_of(&wasm), 30, &defaults)
        .deployment
        .spec
        .template
        .spec
        .expect("the pool's pod");
    let lambda_pod = workload::workload(&lambda, &defaults)
        .expect("a Lambda handler's workload")
        .deployment
        .spec
        .template
        .spec
        .expect("the handler's pod");

    let mut ports = BTreeSet::new();
    let mut roles = Vec::new();
    for (what, pod) in [("pool pod", &pool_pod), ("Lambda handler pod", &lambda_pod)] {
        no_exec_handler(what, pod);
        for container in runtime_containers(pod, &defaults.runtime_image) {
            let name = format!("{what}, container {}", container.name);
            image.runs_as_rendered(&name, pod, container);
            ports.extend(container_ports(container));
            let args = container.args.clone().unwrap_or_default();
            roles.push(args.first().cloned().unwrap_or_default());
            // The rendered arguments parse (an unknown flag fails before `--help` is seen).
            let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
            argv.push("--help");
            image.runs(&argv);
        }
    }
    assert_eq!(
        roles,
        ["serve", "sidecar"],
        "the controller runs the runtime image as a pool (`serve`) and as a sidecar"
    );
    assert_eq!(
        ports, image.dockerfile.exposed,
        "the ports the controller declares for the runtime image are the ones {} exposes",
        image.dockerfile.path
    );
}

/// A Function in namespace `shop` with `spec`.
fn function(spec: Value) -> Function {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "faas.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "hello", "namespace": "shop"},
        "spec": spec,
    }))
    .expect("a valid Function")
}

fn runtime_containers<'a>(pod: &'a PodSpec, image: &str) -> Vec<&'a Container> {
    let containers: Vec<&Container> = pod
        .init_containers
        .iter()
        .flatten()
        .chain(&pod.containers)
        .filter(|c| c.image.as_deref() == Some(image))
        .collect();
    assert!(!containers.is_empty(), "no container runs {image}");
    containers
}

/// `8080/tcp`, as an image config lists exposed ports.
fn container_ports(container: &Container) -> BTreeSet<String> {
    container
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let protocol = p.protocol.as_deref().unwrap_or("TCP").to_lowercase();
            format!("{}/{protocol}", p.container_port)
        })
        .collect()
}

/// The platform's images have no shell and nothing but their binary: an `exec` probe or hook
/// (`sh -c ...` above all) cannot run in them. Fails naming each one.
fn no_exec_handler(what: &str, pod: &PodSpec) {
    fn walk(value: &Value, path: String, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = format!("{path}.{key}");
                    if key == "exec" {
                        found.push(format!("{path} = {child}"));
                    }
                    walk(child, path, found);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{path}[{i}]"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(
        &serde_json::to_value(pod).unwrap(),
        "spec".into(),
        &mut found,
    );
    assert!(
        found.is_empty(),
        "the {what} has exec probes or hooks, which need a shell or a tool the images do not have: {found:?}"
    );
}

/// The final stage of a `docker/*.Dockerfile`, and what its build stage compiles.
#[derive(Debug)]
struct Dockerfile {
    path: String,
    /// `-p` and `--bin` of the build stage's `cargo build`.
    package: String,
    bin: String,
    /// Where the final stage puts the binary.
    destination: String,
    base: String,
    user: String,
    workdir: String,
    exposed: BTreeSet<String>,
    entrypoint: Vec<String>,
}

impl Dockerfile {
    fn read(name: &str) -> Dockerfile {
        let path = format!("docker/{name}.Dockerfile");
        let text = std::fs::read_to_string(repo_root().join(&path)).unwrap();
        let mut instructions: Vec<(String, String)> = Vec::new();
        let mut continued = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || (line.is_empty() && continued.is_empty()) {
                continue;
            }
            if let Some(head) = line.strip_suffix('\\') {
                continued.push_str(head);
                continued.push(' ');
                continue;
            }
            let whole = std::mem::take(&mut continued) + line;
            let (word, rest) = whole
                .split_once(char::is_whitespace)
                .unwrap_or((whole.as_str(), ""));
            instructions.push((word.to_uppercase(), rest.trim().to_owned()));
        }
        let stages: Vec<usize> = instructions
            .iter()
            .enumerate()
            .filter(|(_, (word, _))| word == "FROM")
            .map(|(i, _)| i)
            .collect();
        let last = *stages.last().unwrap_or_else(|| panic!("{path}: no FROM"));
        let (mut package, mut bin) = (None, None);
        for (word, rest) in &instructions[..last] {
            if word == "RUN" && rest.contains("cargo build") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let after = |flag: &str| {
                    words
                        .iter()
                        .position(|w| *w == flag)
                        .and_then(|i| words.get(i + 1))
                        .map(|w| (*w).to_owned())
                };
                package = after("-p");
                bin = after("--bin");
            }
        }
        let (package, bin) = match (package, bin) {
            (Some(p), Some(b)) => (p, b),
            _ => panic!("{path}: no `cargo build -p PACKAGE --bin BIN` in the build stage"),
        };
        let mut file = Dockerfile {
            path: path.clone(),
            package,
            bin,
            destination: String::new(),
            base: instructions[last].1.clone(),
            user: String::new(),
            workdir: String::new(),
            exposed: BTreeSet::new(),
            entrypoint: Vec::new(),
        };
        for (word, rest) in &instructions[last + 1..] {
            match word.as_str() {
                "COPY" => {
                    let words: Vec<&str> = rest.split_whitespace().collect();
                    let source = format!("/src/target/release/{}", file.bin);
                    assert_eq!(
                        words[..words.len() - 1],
                        ["--from=build", source.as_str()],
                        "{path}: the final stage copies the binary the build stage builds, and nothing else"
                    );
                    file.destination = words[words.len() - 1].to_owned();
                }
                "USER" => file.user = rest.clone(),
                "WORKDIR" => file.workdir = rest.clone(),
                "EXPOSE" => file.exposed.extend(rest.split_whitespace().map(|p| {
                    if p.contains('/') {
                        p.to_lowercase()
                    } else {
                        format!("{p}/tcp")
                    }
                })),
                "ENTRYPOINT" => {
                    file.entrypoint = serde_json::from_str(rest).unwrap_or_else(|_| {
                        panic!(
                            "{path}: ENTRYPOINT {rest} is not the exec (JSON) form; the shell form needs /bin/sh, which the image does not have"
                        )
                    })
                }
                other => panic!(
                    "{path}: this test does not reproduce `{other}` in the scratch image; teach it (tests/tests/images.rs) and docker/README.md"
                ),
            }
        }
        assert_eq!(
            file.base, BASE,
            "{path}: the base the scratch image stands in for"
        );
        assert_eq!(
            file.entrypoint.first(),
            Some(&file.destination),
            "{path}: the entrypoint is the copied binary"
        );
        let numeric = |s: &str| s.parse::<u32>().is_ok_and(|id| id != 0);
        assert!(
            file.user.split(':').all(numeric) && file.user.split(':').count() == 2,
            "{path}: USER {} must be a numeric non-root uid:gid (runAsNonRoot can only check a number)",
            file.user
        );
        assert!(file.workdir.starts_with('/'), "{path}: an absolute WORKDIR");
        file
    }

    fn uid_gid(&self) -> (i64, i64) {
        let (uid, gid) = self.user.split_once(':').unwrap();
        (uid.parse().unwrap(), gid.parse().unwrap())
    }
}

/// An image built with buildah, committed as an OCI layout and unpacked.
struct Image {
    dockerfile: Dockerfile,
    /// The unpacked root filesystem.
    rootfs: PathBuf,
    _dir: tempfile::TempDir,
}

impl Image {
    /// Builds `docker/{name}.Dockerfile`'s image from scratch; `None` (skipped, saying so) when
    /// not root.
    fn build(name: &str) -> Option<Image> {
        if !is_root() {
            faas_e2e::skip::missing(&format!(
                "building the {name} image needs root (buildah's storage, chroot); \
                 scripts/test.sh runs as root in CI"
            ));
            return None;
        }
        assert!(
            run(Command::new("buildah").arg("--version")).is_some(),
            "buildah not found: the image tests need it (apt-get install buildah; scripts/test.sh installs it)"
        );
        let started = Instant::now();
        let dockerfile = Dockerfile::read(name);
        let binary = faas_e2e::cargo_bin(&dockerfile.package, &dockerfile.bin);
        let built = started.elapsed();

        let dir = tempfile::tempdir().unwrap();
        let buildah = |args: &[&str]| -> String {
            let mut command = Command::new("buildah");
            // Storage of its own per test: no state shared with other tests or the machine.
            command
                .arg("--root")
                .arg(dir.path().join("root"))
                .arg("--runroot")
                .arg(dir.path().join("runroot"))
                .args(["--storage-driver", "vfs"])
                .args(args);
            let output = command.output().expect("run buildah");
            assert!(
                output.status.success(),
                "buildah {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        };
        let container = buildah(&["from", "--name", name, "scratch"]);
        let mut files = vec![(binary.clone(), dockerfile.destination.clone())];
        for library in linked_libraries(&binary, &dockerfile.path) {
            // The file itself at the path the binary asks for (`/lib64/ld-linux-x86-64.so.2` is a
            // symlink on the host; nothing else is in the image to point at).
            let real = std::fs::canonicalize(&library).unwrap();
            files.push((real, library.display().to_string()));
        }
        files.push((CA_CERTIFICATES.into(), CA_CERTIFICATES.to_owned()));
        for (source, destination) in &files {
            buildah(&[
                "copy",
                &container,
                source.to_str().unwrap(),
                destination.as_str(),
            ]);
        }
        let mut config: Vec<String> = vec![
            "config".into(),
            "--entrypoint".into(),
            serde_json::to_string(&dockerfile.entrypoint).unwrap(),
            "--user".into(),
            dockerfile.user.clone(),
            "--workingdir".into(),
            dockerfile.workdir.clone(),
        ];
        for port in &dockerfile.exposed {
            config.extend(["--port".into(), port.clone()]);
        }
        config.push(container.clone());
        buildah(&config.iter().map(String::as_str).collect::<Vec<_>>());
        let layout = dir.path().join("layout");
        buildah(&[
            "commit",
            "--quiet",
            &container,
            &format!("oci:{}:{name}", layout.display()),
        ]);

        let (config, layers) = read_layout(&layout);
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        for layer in layers {
            let ok = run(Command::new("tar")
                .arg("-xf")
                .arg(&layer)
                .arg("-C")
                .arg(&rootfs));
            assert!(ok.is_some(), "unpack layer {}", layer.display());
        }
        let image = Image {
            dockerfile,
            rootfs,
            _dir: dir,
        };
        image.config_is_the_dockerfiles(&config);
        assert_eq!(
            std::fs::read(image.in_image(CA_CERTIFICATES)).ok(),
            std::fs::read(CA_CERTIFICATES).ok(),
            "the image has the CA certificates where distroless keeps them"
        );
        eprintln!(
            "{name} image: binary built in {:.1?}, image built, committed and unpacked in {:.1?} ({} MB)",
            built,
            started.elapsed() - built,
            std::fs::metadata(&binary).unwrap().len() >> 20
        );
        Some(image)
    }

    fn in_image(&self, path: &str) -> PathBuf {
        self.rootfs.join(path.trim_start_matches('/'))
    }

    fn config_is_the_dockerfiles(&self, config: &Value) {
        let file = &self.dockerfile;
        let config = &config["config"];
        let exposed: BTreeSet<String> = config["ExposedPorts"]
            .as_object()
            .map(|ports| ports.keys().cloned().collect())
            .unwrap_or_default();
        let strings = |v: &Value| -> Option<Vec<String>> { serde_json::from_value(v.clone()).ok() };
        assert_eq!(
            (
                config["User"].as_str(),
                config["WorkingDir"].as_str(),
                strings(&config["Entrypoint"]),
                strings(&config["Cmd"]),
                &exposed,
            ),
            (
                Some(file.user.as_str()),
                Some(file.workdir.as_str()),
                Some(file.entrypoint.clone()),
                None,
                &file.exposed,
            ),
            "the image config (user, working dir, entrypoint, no CMD, ports) is what {} says",
            file.path
        );
        assert_eq!(
            config["Env"].as_array().map_or(0, Vec::len),
            0,
            "{} sets no environment; nor does the scratch image",
            file.path
        );
    }

    /// Runs the image's entrypoint with `args`, chrooted into the unpacked image as its user,
    /// with an empty environment: only what the image holds is there.
    fn runs(&self, args: &[&str]) -> String {
        let file = &self.dockerfile;
        // Found on this process's PATH: the child's environment is empty.
        let output = Command::new(on_path("chroot"))
            .arg(format!("--userspec={}", file.user))
            .arg(&self.rootfs)
            .args(&file.entrypoint)
            .args(args)
            .env_clear()
            .current_dir("/")
            .output()
            .expect("run chroot");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{} {args:?} in the {} image failed ({}): {}{}",
            file.entrypoint.join(" "),
            file.path,
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        if args == ["--version"] {
            assert_eq!(
                stdout.trim(),
                format!("{} {}", file.bin, env!("CARGO_PKG_VERSION")),
                "the image's binary answers as itself"
            );
        }
        stdout
    }

    /// A rendered container of this image runs as the image's user, its entrypoint untouched,
    /// probed on ports the image exposes.
    fn runs_as_rendered(&self, what: &str, pod: &PodSpec, container: &Container) {
        let file = &self.dockerfile;
        let (uid, gid) = file.uid_gid();
        let pod_security = pod.security_context.clone().unwrap_or_default();
        let security = container.security_context.clone().unwrap_or_default();
        assert_eq!(
            (
                security.run_as_user.or(pod_security.run_as_user),
                security.run_as_group.or(pod_security.run_as_group),
                security.run_as_non_root.or(pod_security.run_as_non_root),
            ),
            (Some(uid), Some(gid), Some(true)),
            "{what}: runs as {}'s USER",
            file.path
        );
        assert_eq!(
            container.command, None,
            "{what}: the image's ENTRYPOINT runs"
        );
        let ports = container_ports(container);
        let named: BTreeMap<String, i32> = container
            .ports
            .iter()
            .flatten()
            .filter_map(|p| Some((p.name.clone()?, p.container_port)))
            .collect();
        let probes = [
            &container.readiness_probe,
            &container.liveness_probe,
            &container.startup_probe,
        ];
        for probe in probes.into_iter().flatten() {
            let port = probe
                .http_get
                .as_ref()
                .map(|g| g.port.clone())
                .or_else(|| probe.tcp_socket.as_ref().map(|t| t.port.clone()))
                .or_else(|| probe.grpc.as_ref().map(|g| IntOrString::Int(g.port)));
            let port = match port {
                Some(IntOrString::Int(n)) => n,
                Some(IntOrString::String(name)) => *named
                    .get(&name)
                    .unwrap_or_else(|| panic!("{what}: a probe names port {name}, not declared")),
                None => continue,
            };
            assert!(
                file.exposed.contains(&format!("{port}/tcp")),
                "{what}: probed on {port}, which {} does not expose ({:?})",
                file.path,
                file.exposed
            );
        }
        assert!(
            ports.is_subset(&file.exposed),
            "{what}: container ports {ports:?}, {} exposes {:?}",
            file.path,
            file.exposed
        );
    }
}

/// The shared libraries `binary` loads (the dynamic loader included), as paths on this
/// machine; each must be one distroless `cc` ships.
fn linked_libraries(binary: &Path, dockerfile: &str) -> Vec<PathBuf> {
    let out = run(Command::new("ldd").arg(binary)).expect("ldd runs");
    let mut libraries = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, `/lib64/ld-linux-x86-64.so.2 (0x...)`,
        // `linux-vdso.so.1 (0x...)` (in the kernel, not a file).
        let path = match line.split_once(" => ") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        let Some(path) = path else { continue };
        assert!(path.starts_with('/'), "ldd {}: {line}", binary.display());
        let path = PathBuf::from(path);
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            BASE_LIBRARIES.contains(&file.as_str()),
            "{} links {file}, which {BASE} does not have: the image built from {dockerfile} would not start",
            binary.display()
        );
        libraries.push(path);
    }
    assert!(
        libraries
            .iter()
            .any(|l| l.to_string_lossy().contains("ld-linux")),
        "{} is dynamically linked with glibc's loader: {out}",
        binary.display()
    );
    libraries
}

/// The config (JSON) and layer files of the one image in an OCI layout.
fn read_layout(layout: &Path) -> (Value, Vec<PathBuf>) {
    let blob = |digest: &Value| {
        let digest = digest.as_str().expect("a digest");
        let (algorithm, hex) = digest.split_once(':').unwrap();
        layout.join("blobs").join(algorithm).join(hex)
    };
    let json = |path: PathBuf| -> Value {
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    };
    let index = json(layout.join("index.json"));
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "one image in the layout");
    let manifest = json(blob(&manifests[0]["digest"]));
    let config = json(blob(&manifest["config"]["digest"]));
    let layers = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| blob(&l["digest"]))
        .collect();
    (config, layers)
}

/// `program` as found on PATH.
fn on_path(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{program} not found on PATH"))
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

/// stdout of a command that succeeded.
fn run(command: &mut Command) -> Option<String> {
    let Output { status, stdout, .. } = command.output().ok()?;
    status
        .success()
        .then(|| String::from_utf8_lossy(&stdout).into_owned())
}
