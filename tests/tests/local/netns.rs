//! The metadata-endpoint rule end to end, inside a network namespace that has only a loopback
//! interface: even if the rule were broken, no packet could leave the namespace. Skipped
//! (with a message) where namespaces cannot be created (not root, no `ip`).

use std::process::Command;

use faas_e2e::*;

/// A network namespace with only loopback (shared with `aws_credentials`).
pub(crate) struct Netns(pub(crate) String);

impl Netns {
    pub(crate) fn create() -> Option<Netns> {
        // Unique per namespace, not per process: the tests using one run at the same time (one
        // name for both made the second `ip netns add` fail, and that test skipped, silently).
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("faas-test-{}-{n}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let ns = Netns(name);
        let up = Command::new("ip")
            .args(["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"])
            .status();
        if !up.is_ok_and(|s| s.success()) {
            return None;
        }
        // `ip netns exec` bind-mounts /etc/netns/NAME/hosts over /etc/hosts: a name that
        // resolves to the metadata endpoint without any DNS server.
        let etc = std::path::Path::new("/etc/netns").join(&ns.0);
        std::fs::create_dir_all(&etc).ok()?;
        std::fs::write(
            etc.join("hosts"),
            "127.0.0.1 localhost\n169.254.169.254 metadata.test\nfd00:ec2::254 metadata6.test\n",
        )
        .ok()?;
        Some(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
        let _ = std::fs::remove_dir_all(std::path::Path::new("/etc/netns").join(&self.0));
    }
}

pub(crate) fn no_route_out(ns: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ip", "route", "show"])
        .output();
    out.is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_endpoint_is_denied_even_when_everything_is_allowed() {
    if Command::new("curl").arg("--version").output().is_err() {
        skip::missing("curl is not installed (needed to call the gateway inside the namespace)");
        return;
    }
    let Some(ns) = Netns::create() else {
        skip::missing(
            "cannot create a network namespace here (needs root and iproute2); the metadata \
             rule is still covered by faas-outbound's unit tests (a table resolver)",
        );
        return;
    };
    assert!(
        no_route_out(&ns.0),
        "the test namespace must have no route out"
    );
    let dir = tempfile::tempdir().unwrap();
    write_function(
        dir.path(),
        "open",
        &guest("hostile"),
        "  timeout: 5s\n  network:\n    allowedOutboundHosts: [\"*://*:*\"]\n",
    );
    let faas = Faas::start_with(dir.path(), &["ip", "netns", "exec", &ns.0]);
    // The gateway listens on the namespace's loopback: talk to it from inside too.
    for target in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://2852039166/latest/meta-data/",
        "http://0xa9fea9fe/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://metadata.test/latest/meta-data/",
        "http://metadata6.test/",
        "http://169.254.170.2/v2/credentials",
    ] {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.0, "curl", "-s", "-m", "10", "-H"])
            .arg(format!("x-target-url: {target}"))
            .arg(faas.url("/function/open/fetch"))
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            body.contains("DestinationIpProhibited") || body.contains("HttpRequestDenied"),
            "{target} was not refused by the metadata rule: {body}"
        );
    }
}
