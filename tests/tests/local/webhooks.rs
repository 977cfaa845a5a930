//! Functions' webhooks under `faas up` (`spec.webhook`): `POST /hooks/{name}` with the token
//! (bearer, GitLab's header, or GitHub's HMAC signature computed here by Python's `hmac`, an
//! implementation of its own) starts a run whose options come from the body; everything
//! else is refused with its own answer and starts nothing.

use std::path::Path;

use faas_e2e::*;
use serde_json::Value;

const TOKEN: &str = "hook-token-0123456789abcdef";

fn functions(dir: &Path, secrets: &Path) {
    std::fs::write(
        dir.join("deploy.sh"),
        "#!/bin/sh\necho \"deploying $FAAS_OPTION_BRANCH by $FAAS_TRIGGER: $(cat)\" > \"$FAAS_OUTPUT\"\n",
    )
    .unwrap();
    let job = |name: &str, rest: &str| {
        format!(
            "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  \
             runtime:\n    container:\n      command: [sh, deploy.sh]\n      mode: job\n  \
             options:\n  - {{name: branch, required: true, pattern: '[a-z/]+'}}\n{rest}"
        )
    };
    std::fs::write(
        dir.join("deploy.yaml"),
        job(
            "deploy",
            "  webhook:\n    tokenSecret: {secretKeyRef: {name: hooks, key: deploy}}\n    \
             optionsFromBody: {branch: /ref}\n",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("weak.yaml"),
        job(
            "weak",
            "  webhook:\n    tokenSecret: {secretKeyRef: {name: hooks, key: weak}}\n",
        ),
    )
    .unwrap();
    std::fs::write(dir.join("plain.yaml"), job("plain", "")).unwrap();
    std::fs::create_dir_all(secrets.join("hooks")).unwrap();
    // A file's trailing newline is not part of the token.
    std::fs::write(secrets.join("hooks/deploy"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(secrets.join("hooks/weak"), "short").unwrap();
}

fn launch(dir: &Path, secrets: &Path) -> Faas {
    Faas::launch(
        dir,
        Launch {
            args: vec!["--secrets".into(), secrets.to_string_lossy().into_owned()],
            ..Launch::default()
        },
    )
}

/// GitHub's `X-Hub-Signature-256` of `body` under `key`, as Python's `hmac` computes it.
fn github_signature(body: &str, key: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac, hashlib, sys; print('sha256=' + hmac.new(sys.argv[1].encode(), \
             sys.argv[2].encode(), hashlib.sha256).hexdigest())",
            key,
            body,
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn runs_of(faas: &Faas, function: &str) -> Vec<Value> {
    let reply = get(&faas.url(&format!("/system/functions/{function}/runs"))).await;
    reply.json().as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_webhook_with_its_token_starts_a_run_with_options_from_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    functions(dir.path(), secrets.path());
    let faas = launch(dir.path(), secrets.path());
    let hook = faas.url("/hooks/deploy");
    let push = r#"{"ref": "main", "pusher": "ci"}"#;

    let bearer = format!("Bearer {TOKEN}");
    let accepted = send("POST", &hook, &[("authorization", &bearer)], push).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let id = accepted.json()["run"].as_str().unwrap().to_owned();
    let run = faas.run_ended(&id).await;
    assert_eq!(run["status"]["phase"], "Succeeded", "{run}");
    assert_eq!(run["spec"]["trigger"], "webhook");
    assert_eq!(run["spec"]["options"]["branch"], "main");
    assert_eq!(
        run["status"]["output"],
        format!("deploying main by webhook: {push}\n"),
        "the body is the payload"
    );

    // GitHub signs the body with the token; GitLab sends the token as it is.
    let signed = github_signature(push, TOKEN);
    for header in [
        ("x-hub-signature-256", signed.as_str()),
        ("x-gitlab-token", TOKEN),
    ] {
        let accepted = send("POST", &hook, &[header], push).await;
        assert_eq!(accepted.status, 202, "{header:?}: {}", accepted.text());
        let run = faas
            .run_ended(accepted.json()["run"].as_str().unwrap())
            .await;
        assert_eq!(run["status"]["phase"], "Succeeded", "{header:?}: {run}");
    }
}

#[tokio::test]
async fn webhook_calls_without_the_token_or_with_bad_options_start_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    functions(dir.path(), secrets.path());
    let faas = launch(dir.path(), secrets.path());
    let hook = faas.url("/hooks/deploy");
    let push = r#"{"ref": "main"}"#;

    for (headers, what) in [
        (vec![], "no token"),
        (
            vec![(
                "authorization",
                "Bearer hook-token-0123456789abcdeX".to_owned(),
            )],
            "a wrong token",
        ),
        (
            vec![("authorization", TOKEN.to_owned())],
            "a token without its scheme",
        ),
        (
            vec![(
                "x-hub-signature-256",
                github_signature(r#"{"ref": "evil"}"#, TOKEN),
            )],
            "a signature of another body",
        ),
        (
            vec![(
                "x-hub-signature-256",
                github_signature(push, "another-key-0123456789"),
            )],
            "a signature under another key",
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        let refused = send("POST", &hook, &headers, push).await;
        assert_eq!(refused.status, 401, "{what}: {}", refused.text());
        assert_eq!(
            refused.headers["www-authenticate"], "Bearer realm=\"faas webhook\"",
            "{what}"
        );
    }

    let bearer = format!("Bearer {TOKEN}");
    let auth = [("authorization", bearer.as_str())];
    let refused = send("POST", &hook, &auth, r#"{"ref": "Main!"}"#).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("option branch"),
        "{}",
        refused.text()
    );
    let refused = send("POST", &hook, &auth, "not json").await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains("the request body is not a JSON object"),
        "{}",
        refused.text()
    );

    let refused = send("GET", &hook, &auth, "").await;
    assert_eq!(
        (refused.status, &refused.headers["allow"]),
        (405, &"POST".parse::<http::HeaderValue>().unwrap())
    );

    // No webhook and no function look the same from outside.
    let unknown = send("POST", &faas.url("/hooks/nobody"), &auth, push).await;
    let plain = send("POST", &faas.url("/hooks/plain"), &auth, push).await;
    assert_eq!((unknown.status, plain.status), (404, 404));
    assert_eq!(unknown.json()["reason"], plain.json()["reason"]);

    // A token too short to guard anything turns its webhook off, saying so.
    let weak = send(
        "POST",
        &faas.url("/hooks/weak"),
        &[("authorization", "Bearer short")],
        push,
    )
    .await;
    assert_eq!(weak.status, 503, "{}", weak.text());
    assert!(
        weak.text().contains("shorter than 16 characters"),
        "{}",
        weak.text()
    );
    assert!(
        !weak.text().contains("short\""),
        "the token is not shown: {}",
        weak.text()
    );

    assert!(
        runs_of(&faas, "deploy").await.is_empty(),
        "no run was started"
    );
    assert!(runs_of(&faas, "weak").await.is_empty());
}

/// A flood of strangers on a public webhook: 600 calls, 40 at a time, half with wrong bearer
/// tokens (refused before their body is read) and half with GitHub signatures of 256 KiB
/// bodies under the wrong key (read within the body budget, then refused). Every one is
/// answered 401, none starts a run, a function beside it keeps answering every call, and the
/// owner's own call goes through at once afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_strangers_on_a_webhook_starts_nothing_and_disturbs_nobody() {
    use futures::StreamExt as _;

    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    functions(dir.path(), secrets.path());
    std::fs::write(
        dir.path().join("ping.sh"),
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\npong\\n'\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ping.yaml"),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: ping}\nspec:\n  \
         runtime:\n    container:\n      command: [sh, ping.sh]\n      mode: cgi\n",
    )
    .unwrap();
    let faas = launch(dir.path(), secrets.path());
    let hook = faas.url("/hooks/deploy");
    let big = format!(
        r#"{{"ref": "main", "padding": "{}"}}"#,
        "x".repeat(256 << 10)
    );
    // A well-formed signature that is not the body's under the token: it is checked only
    // once the whole body has been read.
    let forged = github_signature("another body", "not-the-token-0123456789");

    let target = hook.clone();
    let flood = (0..600).map(move |i| {
        let (hook, big, forged) = (target.clone(), big.clone(), forged.clone());
        async move {
            if i % 2 == 0 {
                let bearer = format!("Bearer wrong-token-{i:020}");
                send("POST", &hook, &[("authorization", &bearer)], big).await
            } else {
                send("POST", &hook, &[("x-hub-signature-256", &forged)], big).await
            }
        }
    });
    let flood = futures::stream::iter(flood).buffer_unordered(40);
    let answers = tokio::spawn(async move { flood.map(|r| r.status).collect::<Vec<_>>().await });
    // Meanwhile, the function beside it.
    let mut pings = Vec::new();
    while !answers.is_finished() {
        pings.push(get(&faas.url("/function/ping")).await.status);
    }
    let answers = answers.await.unwrap();
    let mut by_status = std::collections::BTreeMap::new();
    for status in &answers {
        *by_status.entry(*status).or_insert(0) += 1;
    }
    assert_eq!(by_status, [(401, 600)].into(), "every stranger refused");
    assert!(!pings.is_empty());
    assert!(
        pings.iter().all(|s| *s == 200),
        "ping during the flood: {pings:?}"
    );
    assert!(runs_of(&faas, "deploy").await.is_empty(), "no run started");

    let bearer = format!("Bearer {TOKEN}");
    let accepted = send(
        "POST",
        &hook,
        &[("authorization", &bearer)],
        r#"{"ref": "main"}"#,
    )
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let run = faas
        .run_ended(accepted.json()["run"].as_str().unwrap())
        .await;
    assert_eq!(run["status"]["phase"], "Succeeded", "{run}");
}
