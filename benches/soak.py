#!/usr/bin/env python3
"""Soak: one `faas up` under mixed load for a long time (30 minutes by default).

Load, each at a fixed rate (open loop: a slow answer does not slow the sender down):
  HTTP GET on every kind of function: a WASM component (hello), a WASM CGI module (echo-cgi),
  a process `mode: http` server (web), a process CGI script (report), a Lambda handler
  through awslambdaric (lam), and a WASM function redeployed every 10 s (flip);
  a cron schedule every second (tick, a process CGI script);
  an SQS stream on moto consumed by a second Lambda handler (lam-sqs);
  async calls with a callback URL served by this script (work);
  every minute, a broken deploy of flip (an invalid manifest), put right 10 s later.

Every 10 s it samples the platform: RSS, open file descriptors and threads of `faas up`, the
number and RSS of its child processes, calls in flight and SQS batches in flight (from
/metrics), and the error counters (its own, by function and kind, and the platform's).

At the end it stops the load, lets the platform drain, stops it with SIGTERM and checks:
  - no unexpected answer: every call answered 200, every async call called back with 200;
  - cron: one record per fire time, every record terminal and Succeeded, every second the
    platform was up for sure has a record;
  - SQS: every message sent was handled (the queue and its DLQ are empty);
  - async: nothing pending, no dead letter;
  - every broken deploy was reported (lastError naming spec.memory) while flip kept serving,
    and every fix brought it back to Ready;
  - faas up exited 0 within its grace, no process of it is left, both SQLite stores pass
    integrity_check;
  - RSS, file descriptors and threads are flat after the warm-up: the least-squares slope over
    the samples after it, and the growth it predicts over that window, are printed; the
    check is a growth within max(5 % of the mean, 8 MiB) for RSS, and below 3 for fds and
    threads.
It writes samples.csv, summary.json and soak.png (matplotlib) to the output directory and
exits 1 when a check fails. Loopback only: moto, faas up and the callback server all listen
on 127.0.0.1, and no address other than 127.0.0.1 is ever called.

  python3 benches/soak.py --faas target/release/faas --hello hello.wasm --echo-cgi echo-cgi.wasm
(benches/soak.sh builds, installs what is missing and runs this.)
"""

import argparse
import collections
import csv
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"


def log(message):
    print(f"soak: {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_until(what, check, limit, interval=0.1):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 - a failed probe is retried until the deadline
            pass
        time.sleep(interval)
    log(f"gave up waiting for {what} after {limit}s")
    return False


def request(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --- the parts ------------------------------------------------------------------------------


class Moto:
    """moto in server mode on a loopback port of its own."""

    def __init__(self, work):
        self.port = free_port()
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self.log = open(os.path.join(work, "moto.log"), "w")
        self.process = subprocess.Popen(
            ["moto_server", "-H", LOOPBACK, "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_until("moto", lambda: request(self.port, "GET", "/moto-api/")[0] < 500, 60):
            raise SystemExit("moto_server did not start")
        import boto3  # installed with moto[server]

        self.sqs = boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def env(self):
        return {
            "AWS_ENDPOINT_URL_SQS": self.endpoint,
            "AWS_ENDPOINT_URL_STS": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def queue_with_dlq(self, name):
        dlq = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue = self.sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": "30",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
            },
        )["QueueUrl"]
        return queue, dlq

    def counts(self, queue):
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def stop(self):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)
        self.log.close()


def write_functions(fns, args, queue, sqs_log, web_port):
    """The manifests (and scripts) of every function under load."""

    def write(name, text):
        with open(os.path.join(fns, name), "w") as f:
            f.write(text)

    def wasm(name, source, extra=""):
        write(
            f"{name}.yaml",
            f"apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n"
            f"  runtime:\n    wasm:\n      source: {source}\n  timeout: 10s\n  memory: 64Mi\n"
            f"  concurrency: 32\n{extra}",
        )

    wasm("hello", args.hello)
    wasm("echo-cgi", args.echo_cgi)
    wasm("work", args.hello)
    shutil.copy(args.hello, os.path.join(fns, "flip.wasm"))
    write("flip.yaml", flip_manifest(0, broken=False))
    shutil.copy(os.path.join(args.root, "examples/container-http/server.py"), os.path.join(fns, "server.py"))
    write(
        "web.yaml",
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: web}\nspec:\n"
        f"  runtime:\n    container:\n      command: [python3, server.py]\n      port: {web_port}\n"
        "      mode: http\n  timeout: 10s\n  concurrency: 16\n",
    )
    write("report.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nreport ok\\n'\n")
    write(
        "report.yaml",
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: report}\nspec:\n"
        "  runtime:\n    container:\n      command: [sh, report.sh]\n      mode: cgi\n  timeout: 10s\n"
        "  concurrency: 8\n",
    )
    write("tick.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\ntick\\n'\n")
    write(
        "tick.yaml",
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: tick}\nspec:\n"
        "  runtime:\n    container:\n      command: [sh, tick.sh]\n      mode: cgi\n  timeout: 10s\n"
        "  schedules:\n  - name: every-second\n    cron: \"* * * * * *\"\n"
        "    history: {succeeded: 100000, failed: 100000}\n",
    )
    write(
        "app.py",
        "import os\n\n\ndef handler(event, context):\n"
        "    if 'Records' in event:\n"
        "        with open(os.environ['SQS_LOG'], 'a') as log:\n"
        "            for record in event['Records']:\n"
        "                log.write(record['body'] + '\\n')\n"
        "        return {'batchItemFailures': []}\n"
        "    return {'statusCode': 200, 'headers': {'content-type': 'text/plain'}, 'body': 'lambda ok'}\n",
    )
    write(
        "lam.yaml",
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: lam}\nspec:\n"
        "  runtime:\n    container:\n      command: [python3, -m, awslambdaric, app.handler]\n"
        "      mode: lambda\n  timeout: 10s\n  concurrency: 2\n",
    )
    write(
        "lam-sqs.yaml",
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: lam-sqs}\nspec:\n"
        "  runtime:\n    container:\n      command: [python3, -m, awslambdaric, app.handler]\n"
        f"      mode: lambda\n  timeout: 10s\n  concurrency: 2\n  env: {{SQS_LOG: {sqs_log}}}\n"
        f"  triggers:\n    sqs:\n    - queueUrl: {queue}\n      batchSize: 10\n"
        "      reportBatchItemFailures: true\n",
    )


def flip_manifest(version, broken):
    # A broken deploy: a value the validation refuses (the old version keeps serving).
    memory = "lots" if broken else "64Mi"
    return (
        "apiVersion: faas.dev/v1alpha1\nkind: Function\nmetadata: {name: flip}\nspec:\n"
        f"  runtime:\n    wasm:\n      source: flip.wasm\n  timeout: 10s\n  memory: {memory}\n"
        f"  concurrency: 32\n  env: {{VERSION: \"{version}\"}}\n"
    )


def replace_file(path, text):
    """Writes `text` to `path` in one rename, so the watcher never reads half a file."""
    temp = f"{path}.tmp"
    with open(temp, "w") as f:
        f.write(text)
    os.replace(temp, path)


# --- load and its accounting ----------------------------------------------------------------


class Tally:
    """Outcomes by (function, kind) and latencies of the current sample window."""

    def __init__(self):
        self.lock = threading.Lock()
        self.outcomes = collections.Counter()
        self.window = collections.defaultdict(list)

    def record(self, function, outcome, seconds):
        with self.lock:
            self.outcomes[(function, outcome)] += 1
            if seconds is not None:
                self.window[function].append(seconds)

    def take_window(self):
        with self.lock:
            window, self.window = self.window, collections.defaultdict(list)
            return window

    def errors(self):
        with self.lock:
            return {f"{f} {o}": n for (f, o), n in self.outcomes.items() if o != "200"}

    def total(self, function):
        with self.lock:
            return sum(n for (f, _), n in self.outcomes.items() if f == function)


def paced(stop, rate, step):
    """Calls step() `rate` times a second until stop is set; a late step is not made up by a
    burst (the schedule restarts from now when it falls more than a second behind)."""
    interval = 1.0 / rate
    due = time.monotonic()
    while not stop.is_set():
        step()
        due += interval
        now = time.monotonic()
        if due < now - 1.0:
            due = now
        stop.wait(max(0.0, due - now))


def http_load(stop, port, tally, function, rate, method="GET", path=None, body=None, headers=None, seen=None):
    """Keeps one keep-alive connection and calls `function` at `rate` per second."""
    path = path or f"/function/{function}/"
    conn = [None]

    def step():
        started = time.monotonic()
        try:
            if conn[0] is None:
                conn[0] = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
            conn[0].request(method, path, body=body, headers=headers or {})
            response = conn[0].getresponse()
            data = response.read()
            outcome = str(response.status)
            if seen is not None and response.status == 202:
                seen(json.loads(data)["callId"])
                outcome = "200"  # accepted: counted as a success, its callback is checked
        except Exception as error:  # noqa: BLE001 - every failure is counted by its kind
            outcome = type(error).__name__
            if conn[0] is not None:
                conn[0].close()
            conn[0] = None
        tally.record(function, outcome, time.monotonic() - started)

    paced(stop, rate, step)


class Callbacks(http.server.ThreadingHTTPServer):
    """Receives the async calls' callbacks: call id -> the statuses it was called back with."""

    daemon_threads = True

    def __init__(self):
        self.received = collections.defaultdict(list)
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server.lock:
                    server.received[self.headers.get("x-call-id", "?")].append(
                        self.headers.get("x-function-status", "?")
                    )
                self.send_response(204)
                self.end_headers()

        super().__init__((LOOPBACK, 0), Handler)
        self.port = self.server_address[1]


def sqs_stream(stop, moto, queue, rate, sent):
    """Sends `rate` messages a second, ten per batch."""
    n = [0]

    def step():
        entries = []
        for _ in range(10):
            body = f"m{n[0]}"
            n[0] += 1
            entries.append({"Id": str(len(entries)), "MessageBody": body})
        try:
            answer = moto.sqs.send_message_batch(QueueUrl=queue, Entries=entries)
            for ok in answer.get("Successful", []):
                sent.add(entries[int(ok["Id"])]["MessageBody"])
        except Exception as error:  # noqa: BLE001 - a refused send is reported, not fatal
            log(f"send_message_batch failed: {error}")

    paced(stop, rate / 10.0, step)


class Deploys:
    """flip redeployed every 10 s; every sixth time a broken manifest instead, which must be
    reported while the old version serves, and is put right at the next redeploy."""

    def __init__(self, fns, port):
        self.path = os.path.join(fns, "flip.yaml")
        self.port = port
        self.redeploys = 0
        self.broken = 0
        self.failures = []

    def summary(self):
        status, body = request(self.port, "GET", "/system/functions/flip")
        return json.loads(body)["summary"] if status == 200 else {}

    def ready(self):
        summary = self.summary()
        return summary.get("state") == "Ready" and not summary.get("lastError")

    def run(self, stop):
        version = 0
        while not stop.wait(10):
            version += 1
            if version % 6 == 0:
                self.broken += 1
                replace_file(self.path, flip_manifest(version, broken=True))
                if not wait_until(
                    "the broken deploy reported",
                    lambda: "spec.memory" in (self.summary().get("lastError") or ""),
                    15,
                ):
                    self.failures.append(f"broken deploy {version} not reported")
            else:
                self.redeploys += 1
                replace_file(self.path, flip_manifest(version, broken=False))
                if not wait_until("flip Ready", self.ready, 15):
                    self.failures.append(f"redeploy {version} not Ready: {self.summary()}")


# --- sampling -------------------------------------------------------------------------------


def proc_tree(root):
    """The pids of root's descendants."""
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def metrics(port):
    """The platform's metrics: {name: [(labels, value)]}."""
    status, body = request(port, "GET", "/metrics")
    parsed = collections.defaultdict(list)
    if status != 200:
        return parsed
    for line in body.decode().splitlines():
        match = METRIC_LINE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            parsed[match.group(1)].append((labels, float(match.group(3))))
    return parsed


def metric_sum(parsed, name, keep=lambda labels: True):
    return sum(value for labels, value in parsed.get(name, []) if keep(labels))


def platform_errors(parsed):
    """The platform's own error counters, by kind."""
    errors = {}
    for labels, value in parsed.get("faas_invocations_total", []):
        if not labels.get("code", "200").startswith("2") and value:
            errors[f"invocations {labels.get('function')} {labels.get('code')}"] = value
    for labels, value in parsed.get("faas_rejected_total", []):
        if value:
            errors[f"rejected {labels.get('function')} {labels.get('reason')}"] = value
    for labels, value in parsed.get("faas_async_calls_total", []):
        if labels.get("outcome") in ("retried", "dead_lettered", "callback_failed") and value:
            errors[f"async {labels.get('function')} {labels.get('outcome')}"] = value
    for name in ("faas_sqs_receive_errors_total", "faas_guest_log_dropped_lines_total"):
        total = metric_sum(parsed, name)
        if total:
            errors[name] = total
    return errors


def sample(started, faas_pid, port, tally):
    children = proc_tree(faas_pid)
    parsed = metrics(port)
    window = tally.take_window()
    row = {
        "t_s": round(time.monotonic() - started, 1),
        "rss_mib": status_kib(faas_pid, "VmRSS") / 1024,
        "fds": fd_count(faas_pid),
        "threads": status_kib(faas_pid, "Threads"),
        "children": len(children),
        "children_rss_mib": sum(status_kib(pid, "VmRSS") for pid in children) / 1024,
        "in_flight": metric_sum(parsed, "faas_invocations_in_flight"),
        "sqs_batches_in_flight": metric_sum(parsed, "faas_sqs_batches_in_flight"),
        "load_errors": sum(tally.errors().values()),
        "platform_errors": sum(platform_errors(parsed).values()),
    }
    for function, latencies in sorted(window.items()):
        latencies.sort()
        row[f"{function}_p99_ms"] = 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return row


# --- checks ---------------------------------------------------------------------------------


def fit(xs, ys):
    """Least-squares slope and intercept."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var if var else 0.0
    return slope, mean_y - slope * mean_x


def flatness(rows, warmup_s):
    after = [r for r in rows if r["t_s"] >= warmup_s]
    if len(after) < 3:
        return {}, ["too few samples after the warm-up to judge flatness"]
    span = after[-1]["t_s"] - after[0]["t_s"]
    result, failures = {}, []
    for key, limit in (("rss_mib", None), ("fds", 3), ("threads", 3), ("children_rss_mib", None)):
        xs = [r["t_s"] for r in after]
        ys = [r[key] for r in after]
        slope, _ = fit(xs, ys)
        growth = slope * span
        mean = sum(ys) / len(ys)
        bound = limit if limit is not None else max(0.05 * mean, 8.0)
        result[key] = {
            "slope_per_min": round(slope * 60, 4),
            "growth_over_window": round(growth, 3),
            "mean": round(mean, 2),
            "min": min(ys),
            "max": max(ys),
            "bound": round(bound, 2),
        }
        if key != "children_rss_mib" and growth > bound:
            failures.append(f"{key} grows {growth:.2f} over {span:.0f}s after the warm-up (bound {bound:.2f})")
    return result, failures


def check_cron(db, up_from, up_to):
    connection = sqlite3.connect(db)
    rows = connection.execute("SELECT body FROM runs WHERE function = 'tick' ORDER BY seq").fetchall()
    connection.close()
    by_time = collections.defaultdict(list)
    for (body,) in rows:
        run = json.loads(body)
        by_time[run["spec"].get("scheduledTime", "?")].append(run["status"].get("phase", "?"))
    failures = []
    doubled = {t: p for t, p in by_time.items() if len(p) > 1}
    if doubled:
        failures.append(f"cron: two records for one fire time: {list(doubled.items())[:5]}")
    not_succeeded = {t: p for t, p in by_time.items() if any(x != "Succeeded" for x in p)}
    if not_succeeded:
        failures.append(f"cron: runs not Succeeded: {list(not_succeeded.items())[:5]}")
    recorded = set(by_time)
    missing = []
    for second in range(int(up_from) + 2, int(up_to) - 1):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        if stamp not in recorded:
            missing.append(stamp)
    if missing:
        failures.append(f"cron: {len(missing)} fire times with no record while up: {missing[:5]}")
    phases = collections.Counter(p for ps in by_time.values() for p in ps)
    return {"records": len(rows), "phases": dict(phases), "missing": len(missing)}, failures


def integrity(db):
    connection = sqlite3.connect(db)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def leftovers(fns):
    """Processes still running in the functions' folder (each function's working directory)."""
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(fns):
                    left.append(int(entry))
            except OSError:
                pass
    return left


# --- the plot -------------------------------------------------------------------------------


def plot(rows, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t_s"] / 60 for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    ax = axes[0][0]
    ax.plot(t, [r["rss_mib"] for r in rows], label="faas up")
    ax.plot(t, [r["children_rss_mib"] for r in rows], label="its child processes")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax = axes[0][1]
    ax.plot(t, [r["fds"] for r in rows], label="open fds")
    ax.plot(t, [r["threads"] for r in rows], label="threads")
    ax.plot(t, [r["children"] for r in rows], label="child processes")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax = axes[1][0]
    keys = sorted({k for r in rows for k in r if k.endswith("_p99_ms")})
    for key in keys:
        ax.plot(t, [r.get(key, float("nan")) for r in rows], label=key[: -len("_p99_ms")])
    ax.set_ylabel("p99 latency per 10 s (ms)")
    ax.set_yscale("log")
    ax.legend(fontsize="small", ncol=2)
    ax.set_xlabel("minutes")
    ax = axes[1][1]
    ax.plot(t, [r["in_flight"] for r in rows], label="calls in flight")
    ax.plot(t, [r["sqs_batches_in_flight"] for r in rows], label="SQS batches in flight")
    ax.plot(t, [r["load_errors"] for r in rows], label="unexpected answers (total)")
    ax.plot(t, [r["platform_errors"] for r in rows], label="platform error counters (total)")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.set_xlabel("minutes")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


# --- main -----------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faas", required=True)
    parser.add_argument("--hello", required=True)
    parser.add_argument("--echo-cgi", required=True)
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--seconds", type=int, default=1800)
    parser.add_argument("--warmup", type=int, default=None, help="seconds; default 10%% of the run, at least 60")
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second per function")
    parser.add_argument("--sqs-rate", type=float, default=20.0, help="SQS messages per second")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    for name in ("faas", "hello", "echo_cgi"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    warmup = args.warmup if args.warmup is not None else max(60, args.seconds // 10)
    os.makedirs(args.out, exist_ok=True)

    work = tempfile.mkdtemp(prefix="faas-soak.")
    fns, state = os.path.join(work, "functions"), os.path.join(work, "state")
    os.makedirs(fns)
    os.makedirs(state)
    moto = Moto(work)
    faas = None
    failures = []
    try:
        queue, dlq = moto.queue_with_dlq(f"soak-{os.getpid()}")
        sqs_log = os.path.join(work, "sqs.log")
        write_functions(fns, args, queue, sqs_log, free_port())
        port = free_port()
        env = dict(os.environ, **moto.env(), RUST_LOG="warn")
        faas_log = open(os.path.join(args.out, "faas.log"), "w")
        faas = subprocess.Popen(
            [args.faas, "up", fns, "--listen", f"{LOOPBACK}:{port}", "--no-build", "--state", state],
            stdout=faas_log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        functions = ["hello", "echo-cgi", "web", "report", "lam", "flip"]
        for function in functions + ["work"]:
            if not wait_until(f"{function} answering", lambda f=function: request(port, "GET", f"/function/{f}/")[0] == 200, 120, 0.2):
                raise SystemExit(f"{function} never answered 200; see {args.out}/faas.log")
        up_from = time.time()
        log(f"faas up (pid {faas.pid}) on {LOOPBACK}:{port}; {args.seconds}s of load, warm-up {warmup}s")

        tally = Tally()
        callbacks = Callbacks()
        threading.Thread(target=callbacks.serve_forever, daemon=True).start()
        accepted, sent = [], set()
        stop = threading.Event()
        threads = [
            threading.Thread(target=http_load, args=(stop, port, tally, f, args.rate), daemon=True)
            for f in functions
        ]
        threads.append(
            threading.Thread(
                target=http_load,
                args=(stop, port, tally, "work", args.rate / 4),
                kwargs={
                    "method": "POST",
                    "path": "/async-function/work",
                    "body": b"soak",
                    "headers": {"X-Callback-Url": f"http://{LOOPBACK}:{callbacks.port}/callback"},
                    "seen": accepted.append,
                },
                daemon=True,
            )
        )
        threads.append(threading.Thread(target=sqs_stream, args=(stop, moto, queue, args.sqs_rate, sent), daemon=True))
        deploys = Deploys(fns, port)
        threads.append(threading.Thread(target=deploys.run, args=(stop,), daemon=True))
        for thread in threads:
            thread.start()

        started = time.monotonic()
        rows = []
        with open(os.path.join(args.out, "samples.csv"), "w", newline="") as samples_file:
            writer = None
            while time.monotonic() - started < args.seconds:
                time.sleep(min(10, max(0.1, args.seconds - (time.monotonic() - started))))
                if faas.poll() is not None:
                    failures.append(f"faas up exited during the soak with {faas.returncode}")
                    break
                row = sample(started, faas.pid, port, tally)
                rows.append(row)
                if writer is None:
                    writer = csv.DictWriter(samples_file, fieldnames=list(row), extrasaction="ignore")
                    writer.writeheader()
                writer.writerow(row)
                samples_file.flush()
                log(
                    f"{row['t_s']:7.0f}s rss {row['rss_mib']:.1f} MiB fds {row['fds']} threads {row['threads']} "
                    f"children {row['children']} ({row['children_rss_mib']:.0f} MiB) in flight {row['in_flight']:.0f} "
                    f"unexpected {row['load_errors']} platform errors {row['platform_errors']:.0f}"
                )
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        up_to = time.time()

        # Drain: the queue empty, no async call pending, every accepted call called back.
        drained = wait_until(
            "the SQS queue, the async queue and the callbacks",
            lambda: moto.counts(queue) == (0, 0)
            and json.loads(request(port, "GET", "/system/async")[1]).get("pending") == 0
            and all(call in callbacks.received for call in accepted),
            120,
            0.5,
        )
        if not drained:
            failures.append("not drained within 120 s")
        async_state = json.loads(request(port, "GET", "/system/async")[1])
        final_metrics = metrics(port)
        faas.send_signal(signal.SIGTERM)
        try:
            code = faas.wait(timeout=60)
        except subprocess.TimeoutExpired:
            faas.kill()
            code = "still running 60 s after SIGTERM"
        faas_log.close()
        if code != 0:
            failures.append(f"faas up exited with {code} after SIGTERM")
        left = leftovers(fns)
        if left:
            failures.append(f"processes left in the functions' folder after faas up exited: {left}")
            for pid in left:
                os.kill(pid, signal.SIGKILL)

        # The checks.
        load_errors = tally.errors()
        if load_errors:
            failures.append(f"unexpected answers: {load_errors}")
        bad_callbacks = {c: s for c, s in callbacks.received.items() if s != ["200"]}
        if bad_callbacks:
            failures.append(f"callbacks other than one 200: {list(bad_callbacks.items())[:5]}")
        never_called_back = [c for c in accepted if c not in callbacks.received]
        if never_called_back:
            failures.append(f"{len(never_called_back)} accepted calls never called back")
        if async_state.get("deadLetters"):
            failures.append(f"async dead letters: {async_state['deadLetters'][:3]}")
        with open(sqs_log) as f:
            handled = [line.strip() for line in f if line.strip()]
        unhandled = sent - set(handled)
        if unhandled:
            failures.append(f"{len(unhandled)} SQS messages never handled: {sorted(unhandled)[:5]}")
        dlq_visible, dlq_in_flight = moto.counts(dlq)
        if dlq_visible or dlq_in_flight:
            failures.append(f"SQS DLQ holds {dlq_visible + dlq_in_flight} messages")
        cron, cron_failures = check_cron(os.path.join(state, "runs.db"), up_from, up_to)
        failures += cron_failures
        failures += deploys.failures
        for db in ("runs.db", "async.db"):
            verdict = integrity(os.path.join(state, db))
            if verdict != "ok":
                failures.append(f"{db}: integrity_check says {verdict}")
        flat, flat_failures = flatness(rows, warmup)
        failures += flat_failures
        platform = platform_errors(final_metrics)
        # The broken deploys are refused before they serve: they are not errors of a call.
        if platform:
            failures.append(f"platform error counters: {platform}")

        calls = {f: tally.total(f) for f in functions + ["work"]}
        summary = {
            "seconds": args.seconds,
            "warmup_s": warmup,
            "rate_per_function": args.rate,
            "calls": calls,
            "unexpected_answers": load_errors,
            "platform_errors": platform,
            "async": {"accepted": len(accepted), "called_back": len(callbacks.received)},
            "sqs": {"sent": len(sent), "handled": len(handled), "handled_twice": len(handled) - len(set(handled))},
            "cron": cron,
            "deploys": {"redeploys": deploys.redeploys, "broken": deploys.broken},
            "flatness_after_warmup": flat,
            "exit_code": code,
            "failures": failures,
        }
        with open(os.path.join(args.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        if rows:
            plot(
                rows,
                os.path.join(args.out, "soak.png"),
                f"faas up soak: {args.seconds // 60} min, {args.rate:g} calls/s per function, {os.cpu_count()} CPUs",
            )
        print(json.dumps(summary, indent=2))
    finally:
        if faas is not None and faas.poll() is None:
            faas.kill()
            faas.wait()
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        log("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    log(f"all checks hold; {args.out}/soak.png, samples.csv, summary.json")


if __name__ == "__main__":
    main()
