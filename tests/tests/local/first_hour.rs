//! The README's "Your first hour" runs as written: every `$ faas ...` line of that section is
//! run through `sh`, in order, and the lines shown under it must appear in its output, in
//! order (`…` stands for any text). `$ faas up examples` starts the platform in the
//! background, as the README's second terminal does.
//!
//! The user's laptop is simulated as the README describes it: a kubeconfig whose current
//! context is `prod-eks`. Its server is a closed loopback port, so a command that reached the
//! "cluster" by mistake fails loudly, and nothing leaves this machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use faas_e2e::*;

/// The section's text, between its marker comment and the next `## ` heading.
fn section(readme: &str) -> &str {
    let start = readme
        .find("## Your first hour")
        .expect("README has a \"Your first hour\" section");
    let rest = &readme[start + 1..];
    let end = rest.find("\n## ").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// One `$ command` with the output lines shown under it.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The steps of every ```sh block, in order.
fn steps(section: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block = false;
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = !in_block && line.starts_with("```sh");
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_owned(),
                expected: Vec::new(),
            });
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.trim_end().to_owned());
        }
    }
    steps
}

/// Whether `line` matches `pattern`, where `…` matches any text (anchored at both ends).
fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    let (first, rest) = parts.split_first().expect("split yields one part");
    let Some(mut remaining) = line.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// Checks that every expected line matches an output line, in order.
fn check(step: &Step, output: &str, address: &str) {
    let lines: Vec<&str> = output.lines().map(str::trim_end).collect();
    let mut at = 0;
    for expected in &step.expected {
        let expected = expected.replace("127.0.0.1:8080", address);
        match lines[at..].iter().position(|l| matches(&expected, l)) {
            Some(i) => at += i + 1,
            None => panic!(
                "`$ {}`: no output line matches {expected:?} (after line {at});\noutput:\n{output}",
                step.command
            ),
        }
    }
}

fn kubeconfig(dir: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {server: \"https://127.0.0.1:9\"}\ncontexts:\n- name: prod-eks\n  context: {cluster: prod, user: me, namespace: payments}\ncurrent-context: prod-eks\nusers:\n- name: me\n  user: {token: not-a-token}\n",
    )
    .unwrap();
    path
}

#[test]
fn pattern_matching_is_anchored_and_wildcards_span_text() {
    assert!(matches("a … b", "a x y b"));
    assert!(matches("run x.…: ok", "run x.123: ok"));
    assert!(!matches("a … b", "a x y b c"));
    assert!(!matches("hello", "hello world"));
    assert!(matches("…", ""));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_first_hour_runs_as_written() {
    let root = repo_root();
    let built = [
        "examples/target/wasm32-wasip2/release/hello.wasm",
        "examples/target/wasm32-wasip2/release/sqs_consumer.wasm",
        "examples/target/wasm32-wasip1/release/echo-cgi.wasm",
        "examples/target/debug/lambda-rust",
    ];
    if let Some(missing) = built.iter().find(|p| !root.join(p).exists()) {
        skip::missing(&format!(
            "{missing} is not built (run examples/build.sh, as scripts/test.sh does)"
        ));
        return;
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let steps = steps(section(&readme));
    assert!(
        steps.iter().any(|s| s.command == "faas up examples"),
        "the section starts the platform with `faas up examples`"
    );

    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("faas-config");
    let kubeconfig = kubeconfig(home.path());
    let bin_dir = faas_bin().parent().unwrap().to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let env: Vec<(String, String)> = vec![
        ("FAAS_CONFIG_DIR".into(), config.display().to_string()),
        ("KUBECONFIG".into(), kubeconfig.display().to_string()),
        ("NO_COLOR".into(), "1".into()),
        ("TZ".into(), "UTC".into()),
        // No AWS credentials, as on a fresh laptop; and never instance metadata.
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/nonexistent".into()),
        ("AWS_CONFIG_FILE".into(), "/nonexistent".into()),
    ];

    let mut platform: Option<Faas> = None;
    for step in &steps {
        if step.command == "faas up examples" {
            platform = Some(Faas::launch(
                &root.join("examples"),
                Launch {
                    env: env.clone(),
                    ..Launch::default()
                },
            ));
            continue;
        }
        let address = platform.as_ref().map_or("127.0.0.1:8080".to_owned(), |p| {
            p.base.trim_start_matches("http://").to_owned()
        });
        if let Some(platform) = &platform {
            wait_ready(platform, step).await;
        }
        let output = Command::new("sh")
            .arg("-c")
            .arg(&step.command)
            .current_dir(&root)
            .env("PATH", &path)
            .env_remove("FAAS_GATEWAY")
            .env_remove("FAAS_CONTEXT")
            .env_remove("FAAS_NAMESPACE")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        let fails = step.expected.iter().any(|l| l.contains("error:"));
        assert_eq!(
            output.status.success(),
            !fails,
            "`$ {}` exit status {:?}; output:\n{text}",
            step.command,
            output.status
        );
        check(step, &text, &address);
    }
}

/// Waits until every function the step's expected output names as `Ready` or `Degraded` is
/// so (a platform just started may still be starting its processes and triggers).
async fn wait_ready(platform: &Faas, step: &Step) {
    if !step.command.starts_with("faas list") {
        return;
    }
    let wanted: Vec<(&str, &str)> = step
        .expected
        .iter()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .filter(|(_, state)| matches!(*state, "Ready" | "Degraded"))
        .collect();
    platform
        .eventually(
            "the functions the README lists reach their state",
            || async {
                let list = get(&platform.url("/system/functions")).await.json();
                wanted.iter().all(|(name, state)| {
                    list.as_array()
                        .into_iter()
                        .flatten()
                        .any(|f| f["name"] == *name && f["state"].as_str() == Some(state))
                })
            },
        )
        .await;
}
