//! Which platform the CLI acts on, as a user with a kubeconfig for a production cluster meets
//! it: a running `faas up` is preferred, every changing command names its target first, a
//! cluster nobody chose is never changed, and `faas target` shows and saves the choice.

use std::path::Path;
use std::time::Duration;

use faas_e2e::{Faas, Launch, guest};

use crate::cli::{faas, text};

/// A kubeconfig whose current context is `prod` (an API server that never answers).
fn kubeconfig(home: &Path) {
    std::fs::write(
        home.join("kubeconfig"),
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: prod\n  context: {cluster: c, user: u, namespace: payments}\n",
    )
    .unwrap();
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_local_platform_is_preferred_and_an_unchosen_cluster_is_never_changed() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    kubeconfig(home);
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();

    // No local platform: the kubeconfig's context is only read, never changed.
    for args in [
        vec!["deploy", "hi", "--wasm", hello],
        vec!["delete", "hi"],
        vec!["invoke", "hi"],
        vec!["run", "hi"],
    ] {
        let out = faas(&args, home);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("faas: error: refusing to")
                && err.contains("cluster context \"prod\"")
                && err.contains("faas target set cluster"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    let (_, err) = text(&faas(&["list"], home));
    assert!(err.contains("cannot reach the API server"), "{err}");
    let (out, _) = text(&faas(&["target"], home));
    assert!(
        out.starts_with(
            "target: cluster prod, namespace payments\nwhy:    the kubeconfig's current context"
        ),
        "{out}"
    );

    // `faas up` records itself: commands go there, and say so first.
    let served = tempfile::tempdir().unwrap();
    let config = home.join("faas-config");
    let mut platform = Faas::launch(
        served.path(),
        Launch {
            env: vec![("FAAS_CONFIG_DIR".into(), config.to_str().unwrap().into())],
            ..Launch::default()
        },
    );
    let out = faas(&["deploy", "hi", "--wasm", hello], home);
    let (said, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(first_line(&err), format!("→ local {}", platform.base));
    assert!(said.starts_with("hi created"), "{said}");
    let out = faas(&["invoke", "hi", "--path", "/x"], home);
    let (said, err) = text(&out);
    assert_eq!(said, "Hello from faas: GET /x\n", "{err}");
    assert_eq!(first_line(&err), format!("→ local {}", platform.base));
    let (out, _) = text(&faas(&["target"], home));
    assert!(
        out.starts_with(&format!(
            "target: local {}\nwhy:    a running `faas up` (pid ",
            platform.base
        )),
        "{out}"
    );
    // Read-only commands print no target line.
    let out = faas(&["list"], home);
    assert!(out.status.success());
    assert_eq!(text(&out).1, "");

    // A saved cluster wins over the local platform; it was chosen, so it is used.
    let out = faas(&["target", "set", "cluster", "-n", "team"], home);
    let (said, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        said.starts_with("target set: cluster prod, namespace team (saved in "),
        "{said}"
    );
    let (_, err) = text(&faas(&["delete", "hi"], home));
    assert_eq!(first_line(&err), "→ cluster prod, namespace team");
    assert!(err.contains("cannot reach the API server"), "{err}");
    // A flag still wins over the saved target.
    let (said, err) = text(&faas(&["delete", "hi", "--gateway", &platform.base], home));
    assert_eq!(said, "hi deleted\n", "{err}");
    let (said, _) = text(&faas(&["target", "unset"], home));
    assert!(said.starts_with("target unset"), "{said}");
    let (out, _) = text(&faas(&["target"], home));
    assert!(out.contains("why:    a running `faas up`"), "{out}");

    // A clean exit removes the record; a record of a process that is gone is ignored.
    platform.sigterm();
    assert_eq!(platform.wait_exit(Duration::from_secs(30)), Some(0));
    let records = config.join("local");
    assert_eq!(std::fs::read_dir(&records).unwrap().count(), 0);
    std::fs::write(
        records.join("999999999.json"),
        format!(
            r#"{{"url":"{}","pid":999999999,"dir":"/x","started":"2026-01-01T00:00:00Z"}}"#,
            platform.base
        ),
    )
    .unwrap();
    let (out, _) = text(&faas(&["target"], home));
    assert!(out.starts_with("target: cluster prod"), "{out}");
    let (_, err) = text(&faas(&["deploy", "hi", "--wasm", hello], home));
    assert!(err.starts_with("faas: error: refusing to deploy"), "{err}");
}
