//! The CLI in pipes and shells, as scripts use it: a reader that goes away (`| head -1`)
//! ends it quietly, nothing is coloured off a terminal, bash completion offers the target's
//! function names, `invoke --async` prints the call id alone on stdout, and a sample SQS
//! event piped into `faas invoke` reaches a Python Lambda handler as an SQS batch.

use std::io::Write as _;
use std::process::{Command, Stdio};

use faas_e2e::*;

/// Runs `command` with stdout a pipe whose reading end is already closed, as `| head -1` is
/// once head has its line: every write fails with EPIPE (SIGPIPE is ignored by Rust programs).
fn with_closed_stdout(mut command: Command) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command
        .stdout(writer)
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn two_functions() -> (tempfile::TempDir, Faas) {
    let dir = tempfile::tempdir().unwrap();
    write_function(dir.path(), "hello", &guest("hello"), "");
    write_function(dir.path(), "greeter", &guest("hello"), "");
    let faas = Faas::start(dir.path());
    (dir, faas)
}

async fn served(faas: &Faas, name: &str) {
    let url = faas.url(&format!("/function/{name}"));
    faas.eventually(&format!("{name} is served"), || async {
        get(&url).await.status == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_cli_quietly_and_nothing_is_coloured_off_a_terminal() {
    let (_dir, faas) = two_functions();
    served(&faas, "hello").await;
    served(&faas, "greeter").await;

    let mut list = faas.cli();
    list.arg("list");
    let mut completion = faas.cli();
    completion.args(["completion", "fish"]);
    for (what, command) in [("faas list", list), ("faas completion fish", completion)] {
        let out = with_closed_stdout(command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
        assert_eq!(stderr, "", "{what}");
    }

    // `faas up` wrote to a pipe (the test's), not a terminal: no escape sequences at all.
    let log = faas.stderr.lock().unwrap().clone();
    assert!(log.contains("function loaded"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape sequences in: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bash_completion_offers_the_function_names_of_the_target() {
    if Command::new("bash").arg("--version").output().is_err() {
        eprintln!("skipped: no bash");
        return;
    }
    let (_dir, faas) = two_functions();
    served(&faas, "hello").await;
    served(&faas, "greeter").await;
    let bin_dir = faas_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // What bash does on TAB after `faas LINE`: the completion function for the words so far.
    let complete = |line: &str| {
        let script = format!(
            r#"source <(faas completion bash)
COMP_LINE="faas {line}"; COMP_POINT=${{#COMP_LINE}}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_faas_functions faas "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}" | sort"#
        );
        let out = Command::new("bash")
            .args(["-c", &script])
            .env("FAAS_GATEWAY", &faas.base)
            .env("FAAS_CONFIG_DIR", &faas.config_dir)
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(complete("invoke "), "greeter\nhello\n");
    assert_eq!(complete("logs gr"), "greeter\n");
    // The word after a flag that takes a value is that value, not a function.
    assert!(!complete("invoke -d ").contains("hello"));
    // A command that takes no function offers none.
    assert!(!complete("up ").contains("greeter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_async_prints_the_call_id_alone_on_stdout() {
    let (_dir, faas) = two_functions();
    served(&faas, "hello").await;
    let out = faas
        .cli()
        .args(["invoke", "hello", "--async", "-d", "hi"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let id = lines[0];
    assert!(!id.is_empty() && !id.contains(' '), "{id:?}");
    assert!(stderr.contains(&format!("call {id} queued")), "{stderr}");
}

const SQS_HANDLER: &str = r#"
import json

def handler(event, context):
    if "Records" in event:
        return {"batchItemFailures": [], "got": [r["body"] for r in event["Records"]],
                "source": event["Records"][0]["eventSource"]}
    return {"statusCode": 200, "body": "an HTTP request, not an SQS batch"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_sqs_event_piped_into_invoke_reaches_a_lambda_handler_as_a_batch() {
    if Command::new("python3")
        .args(["-c", "import awslambdaric"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        panic!("awslambdaric is not installed (scripts/test.sh installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), SQS_HANDLER).unwrap();
    std::fs::write(
        dir.path().join("orders.yaml"),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: orders}\nspec:\n  runtime:\n    container:\n      command: [python3, -m, awslambdaric, app.handler]\n      mode: lambda\n  timeout: 10s\n",
    )
    .unwrap();
    let faas = Faas::start(dir.path());
    served(&faas, "orders").await;

    let event = faas
        .cli()
        .args(["events", "sqs", "--body", "order 7"])
        .output()
        .unwrap();
    assert!(event.status.success());
    let mut invoke = faas
        .cli()
        .args(["invoke", "orders", "-d", "@-"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    invoke
        .stdin
        .take()
        .unwrap()
        .write_all(&event.stdout)
        .unwrap();
    let out = invoke.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("-d is an SQS event"), "{stderr}");
    let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("{e}: {stdout}");
    });
    assert_eq!(answer["got"], serde_json::json!(["order 7"]), "{stdout}");
    assert_eq!(answer["source"], "aws:sqs");

    // With --raw the same bytes are a plain request body: an HTTP (ALB) event.
    let raw = faas
        .cli()
        .args(["invoke", "orders", "--raw", "-d"])
        .arg(String::from_utf8_lossy(&event.stdout).as_ref())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&raw.stdout),
        "an HTTP request, not an SQS batch",
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
}
