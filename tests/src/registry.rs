//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry)
//! on a loopback port, with filesystem storage in a temporary folder, optionally behind
//! htpasswd authentication. Never a hand-written fake.
//!
//! Like moto, it runs under a shell that kills it when the test's end of its stdin closes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The user and password of registries started with authentication.
pub const USER: &str = "faas";
pub const PASSWORD: &str = "faas-test-password";
/// bcrypt of PASSWORD (cost 4: the registry checks it on every request).
const PASSWORD_BCRYPT: &str = "$2a$04$Vtl8COCshwsX6aD9MQw2Ku5Ml1mZRepSrjVJuS2k6Wtj/Pp1Ey2wO";
/// What an ECR token decodes to (`AWS:<password>`), as moto's `GetAuthorizationToken` hands
/// it out for its account: a registry started with [`RegistryServer::start_ecr`] accepts it.
pub const ECR_USER: &str = "AWS";
pub const ECR_PASSWORD: &str = "123456789012-auth-token";
const ECR_PASSWORD_BCRYPT: &str = "$2a$04$1.bGH0AXvTMLxQdKZJdqn.rEKw.UiTJo5LaF4FHtoNGbNqMyEuU.K";

pub struct RegistryServer {
    /// `127.0.0.1:PORT`: the registry part of references.
    pub host: String,
    /// Where blobs are stored (tests tamper with them here).
    pub storage: PathBuf,
    _dir: tempfile::TempDir,
    _shell: (Child, ChildStdin),
}

impl RegistryServer {
    /// Starts a registry; with `authenticated`, every request needs USER/PASSWORD.
    pub fn start(authenticated: bool) -> RegistryServer {
        Self::start_with(authenticated.then_some((USER, PASSWORD_BCRYPT)))
    }

    /// Starts a registry whose only user is ECR_USER with moto's ECR token as password.
    pub fn start_ecr() -> RegistryServer {
        Self::start_with(Some((ECR_USER, ECR_PASSWORD_BCRYPT)))
    }

    fn start_with(htpasswd_user: Option<(&str, &str)>) -> RegistryServer {
        let found = Command::new("sh")
            .args(["-c", "command -v docker-registry"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "docker-registry not found: the OCI tests need it (apt-get install docker-registry; scripts/test.sh installs it)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = dir.path().join("storage");
        let port = crate::free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog: {{level: warn, accesslog: {{disabled: true}}}}\n\
             storage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\n\
             http:\n  addr: {host}\n",
            storage.display()
        );
        if let Some((user, bcrypt)) = htpasswd_user {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{bcrypt}\n")).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd: {{realm: faas-test, path: {}}}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("config");
        let mut child = Command::new("bash")
            .args([
                "-c",
                r#"docker-registry serve "$1" >"$2" 2>&1 & r=$!; trap 'kill $r 2>/dev/null' EXIT; cat >/dev/null"#,
                "registry",
            ])
            .arg(&config_path)
            .arg(dir.path().join("registry.log"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let stdin = child.stdin.take().expect("piped stdin");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&host).is_err() {
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
                panic!("docker-registry did not listen on {host} within 30 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        RegistryServer {
            host,
            storage,
            _dir: dir,
            _shell: (child, stdin),
        }
    }

    /// The stored file of a blob (`sha256:<hex>`), for tampering.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Writes a docker config that names `helper` (`ecr-login`) for this registry into `dir`;
    /// returns its path.
    pub fn docker_config_helper(&self, dir: &Path, helper: &str) -> PathBuf {
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            format!(r#"{{"credHelpers": {{"{}": "{helper}"}}}}"#, self.host),
        )
        .expect("docker config");
        path
    }

    /// Writes a docker config with this registry's credentials into `dir`; returns its path.
    pub fn docker_config(&self, dir: &Path, password: &str) -> PathBuf {
        use base64::Engine as _;
        let path = dir.join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        let mut file = std::fs::File::create(&path).expect("docker config");
        write!(
            file,
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            self.host
        )
        .expect("write");
        path
    }
}
