//! The Lambda Invoke API under `faas up`, called by real Lambda clients (boto3, and the AWS
//! SDK for JavaScript v3 from `tests/sdk-js`) pointed at the platform by their endpoint only: an unmodified Python handler (`awslambdaric`) and a
//! WASM function answer `Invoke` as Lambda does, and every refusal is the typed exception an
//! SDK user catches.

use faas_e2e::*;
use serde_json::Value;

const HANDLER: &str = r#"
import json, time

def handler(event, context):
    print("handling", json.dumps(event, sort_keys=True), flush=True)
    if event.get("fail"):
        raise ValueError("no such order")
    if "sleep" in event:
        time.sleep(event["sleep"])
    if "touch" in event:
        with open(event["touch"], "w") as f:
            f.write("done")
    cc = context.client_context
    return {"event": event, "custom": cc.custom if cc else None,
            "arn": context.invoked_function_arn}
"#;

/// Invokes through boto3 and prints what each call gave, by name.
const CALLER: &str = r#"
import base64, json, sys
import boto3, botocore
from botocore.config import Config

endpoint, marker = sys.argv[1], sys.argv[2]
client = boto3.client(
    "lambda", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
    config=Config(retries={"max_attempts": 1}, read_timeout=60),
)
out = {}

def call(key, **kwargs):
    try:
        r = client.invoke(**kwargs)
        out[key] = {
            "status": r["StatusCode"],
            "error": r.get("FunctionError"),
            "payload": r["Payload"].read().decode(),
            "log": base64.b64decode(r["LogResult"]).decode() if "LogResult" in r else None,
            "version": r.get("ExecutedVersion"),
        }
    except client.exceptions.ResourceNotFoundException as e:
        out[key] = {"typed": "ResourceNotFoundException", "message": str(e)}
    except client.exceptions.RequestTooLargeException as e:
        out[key] = {"typed": "RequestTooLargeException", "message": str(e)}
    except client.exceptions.InvalidRequestContentException as e:
        out[key] = {"typed": "InvalidRequestContentException", "message": str(e)}
    except botocore.exceptions.ClientError as e:
        out[key] = {"code": e.response["Error"]["Code"], "message": str(e)}

context = base64.b64encode(json.dumps({"custom": {"team": "a"}}).encode()).decode()
call("ok", FunctionName="orders", Payload=json.dumps({"n": 1}), LogType="Tail",
     ClientContext=context)
call("arn", FunctionName="arn:aws:lambda:us-east-1:000000000000:function:orders",
     Qualifier="$LATEST", Payload=b'{"n": 2}')
call("fail", FunctionName="orders", Payload=b'{"fail": true}')
call("slow", FunctionName="orders", Payload=b'{"sleep": 5}')
call("missing", FunctionName="nope", Payload=b"{}")
call("alias", FunctionName="orders:prod", Payload=b"{}")
call("dry", FunctionName="orders", InvocationType="DryRun")
call("event", FunctionName="orders", InvocationType="Event",
     Payload=json.dumps({"touch": marker}))
call("garbage", FunctionName="orders", Payload=b"{not json")
call("huge", FunctionName="orders", Payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"')
call("wasm", FunctionName="hello", Payload=b'{"a": 1}')

# Past the concurrency limit (2 running, 2 queued): Lambda's throttle, typed.
from concurrent.futures import ThreadPoolExecutor
def busy(i):
    try:
        client.invoke(FunctionName="orders", Payload=b'{"sleep": 1.5}')
        return "ran"
    except client.exceptions.TooManyRequestsException as e:
        return "TooManyRequestsException: " + str(e)
with ThreadPoolExecutor(max_workers=7) as pool:
    out["crowd"] = list(pool.map(busy, range(7)))
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_and_the_javascript_sdk_invoke_functions_as_they_would_lambda() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), HANDLER).unwrap();
    std::fs::write(
        dir.path().join("orders.yaml"),
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: orders}\nspec:\n  \
         runtime:\n    container:\n      command: [python3, -m, awslambdaric, app.handler]\n      \
         mode: lambda\n  timeout: 2s\n  concurrency: 2\n",
    )
    .unwrap();
    write_function(dir.path(), "hello", &guest("hello"), "");
    let faas = Faas::launch(dir.path(), Launch::default());
    assert_eq!(get(&faas.url("/function/hello")).await.status, 200);
    let marker = dir.path().join("event-ran");
    let caller = dir.path().join("caller.py");
    std::fs::write(&caller, CALLER).unwrap();
    let output = std::process::Command::new("python3")
        .arg(&caller)
        .arg(faas.url(""))
        .arg(&marker)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("{out:#}");

    // RequestResponse: the handler's result, its log tail and its client context.
    let ok = &out["ok"];
    assert_eq!(ok["status"], 200, "{ok}");
    assert_eq!(ok["error"], Value::Null);
    assert_eq!(ok["version"], "$LATEST");
    let result: Value = serde_json::from_str(ok["payload"].as_str().unwrap()).unwrap();
    assert_eq!(result["event"], serde_json::json!({"n": 1}));
    assert_eq!(result["custom"], serde_json::json!({"team": "a"}));
    assert!(
        result["arn"]
            .as_str()
            .unwrap()
            .ends_with(":function:orders"),
        "{result}"
    );
    assert!(
        ok["log"].as_str().unwrap().contains("handling {\"n\": 1}"),
        "{ok}"
    );
    assert_eq!(out["arn"]["status"], 200, "{}", out["arn"]);

    // The handler's error and its deadline: 200 with FunctionError, as Lambda answers.
    let fail = &out["fail"];
    assert_eq!(
        (fail["status"].clone(), fail["error"].clone()),
        (200.into(), "Unhandled".into()),
        "{fail}"
    );
    let error: Value = serde_json::from_str(fail["payload"].as_str().unwrap()).unwrap();
    assert_eq!(error["errorType"], "ValueError");
    assert_eq!(error["errorMessage"], "no such order");
    let slow = &out["slow"];
    assert_eq!(slow["error"], "Unhandled", "{slow}");
    let error: Value = serde_json::from_str(slow["payload"].as_str().unwrap()).unwrap();
    assert_eq!(error["errorType"], "Sandbox.Timedout", "{slow}");

    // What the SDK raises, typed.
    assert_eq!(
        out["missing"]["typed"], "ResourceNotFoundException",
        "{}",
        out["missing"]
    );
    assert!(
        out["missing"]["message"]
            .as_str()
            .unwrap()
            .contains("function:nope")
    );
    assert_eq!(
        out["alias"]["typed"], "ResourceNotFoundException",
        "{}",
        out["alias"]
    );
    assert_eq!(
        out["garbage"]["typed"], "InvalidRequestContentException",
        "{}",
        out["garbage"]
    );
    assert_eq!(
        out["huge"]["typed"], "RequestTooLargeException",
        "{}",
        out["huge"]
    );

    // DryRun: 204, nothing run. Event: 202, then it runs through the async queue.
    assert_eq!(out["dry"]["status"], 204, "{}", out["dry"]);
    assert_eq!(out["event"]["status"], 202, "{}", out["event"]);
    faas.eventually("the Event invocation ran", || async { marker.exists() })
        .await;

    // Seven at once on a function taking 2 and queueing 2: the rest are throttled.
    let crowd: Vec<&str> = out["crowd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let throttled = crowd
        .iter()
        .filter(|o| o.starts_with("TooManyRequestsException"))
        .count();
    assert!(throttled >= 1 && crowd.contains(&"ran"), "{crowd:?}");

    // A WASM function: the payload is its POST body, its answer the result.
    let wasm = &out["wasm"];
    assert_eq!(wasm["status"], 200, "{wasm}");
    assert_eq!(wasm["error"], Value::Null);
    assert_eq!(wasm["payload"], "Hello from faas: POST /\n");

    // The AWS SDK for JavaScript v3: the same answers, the same typed exception.
    let output = std::process::Command::new("node")
        .arg(repo_root().join("tests/sdk-js/invoke.mjs"))
        .arg(faas.url(""))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} (scripts/test.sh installs tests/sdk-js)",
        String::from_utf8_lossy(&output.stderr)
    );
    let js: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("{js:#}");
    let ok = &js["ok"];
    assert_eq!(ok["status"], 200, "{ok}");
    let result: Value = serde_json::from_str(ok["payload"].as_str().unwrap()).unwrap();
    assert_eq!(result["event"], serde_json::json!({"n": 3}));
    assert!(
        ok["log"].as_str().unwrap().contains("handling {\"n\": 3}"),
        "{ok}"
    );
    assert_eq!(js["fail"]["error"], "Unhandled", "{}", js["fail"]);
    assert!(
        js["fail"]["payload"]
            .as_str()
            .unwrap()
            .contains("no such order")
    );
    assert_eq!(
        js["missing"]["typed"], "ResourceNotFoundException",
        "{}",
        js["missing"]
    );
    assert_eq!(js["missing"]["http"], 404);
    assert_eq!(js["dry"]["status"], 204, "{}", js["dry"]);
    assert_eq!(js["wasm"]["payload"], "Hello from faas: POST /\n");
}
