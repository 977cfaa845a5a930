#!/usr/bin/env python3
"""The timed steps of benches/first-request.sh, each from its action to the first 200.

The action and the clock are in this process, and the URL is polled every millisecond on one
keep-alive connection, so a figure is not the start-up of a poller or a curl per poll (the
shell loop this replaces could not tell 5 ms from 15).

  write DIR NAME ARTIFACT URL     a manifest renamed into the watched folder DIR
  deploy BASE NAME ARTIFACT URL   PUT BASE/system/functions/NAME (manifest + artifact, as
                                  `faas deploy` sends them), the function not known before
  start LOG URL -- CMD...         CMD started (its output to LOG), left running

Prints the milliseconds to the first 200 (and, for start, the process id after it).
"""

import http.client
import os
import subprocess
import sys
import time
import urllib.parse
import uuid

TIMEOUT_S = float(os.environ.get("TIMEOUT", "60"))
POLL_S = 0.001


def manifest(name, artifact):
    return (
        "apiVersion: faas.dev/v1alpha1\nkind: Function\n"
        f"metadata: {{name: {name}}}\nspec:\n  runtime:\n    wasm:\n"
        f"      source: {artifact}\n  timeout: 10s\n  memory: 64Mi\n"
    )


def until_200(url, started_ns, process=None):
    """Milliseconds from started_ns to the first 200 of url."""
    parsed = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + TIMEOUT_S
    conn = None
    while time.monotonic() < deadline:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=2)
            conn.request("GET", parsed.path or "/")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return (time.monotonic_ns() - started_ns) / 1e6
            if response.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            if conn is not None:
                conn.close()
            conn = None
            if process is not None and process.poll() is not None:
                sys.exit(f"the process exited ({process.returncode}) before {url} answered 200")
        time.sleep(POLL_S)
    sys.exit(f"no 200 from {url} within {TIMEOUT_S:.0f}s")


def write(folder, name, artifact, url):
    hidden = os.path.join(folder, f".{name}.yaml.tmp")
    with open(hidden, "w") as f:
        f.write(manifest(name, artifact))
    started = time.monotonic_ns()
    os.rename(hidden, os.path.join(folder, f"{name}.yaml"))
    print(f"{until_200(url, started):.1f}")


def deploy(base, name, artifact, url):
    with open(artifact, "rb") as f:
        wasm = f.read()
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="manifest"; '
            'filename="function.yaml"\r\nContent-Type: application/yaml\r\n\r\n'.encode(),
            manifest(name, "artifact.wasm").encode(),
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="artifact"; '
            'filename="artifact.wasm"\r\nContent-Type: application/wasm\r\n\r\n'.encode(),
            wasm,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=TIMEOUT_S)
    conn.connect()
    started = time.monotonic_ns()
    conn.request(
        "PUT",
        f"/system/functions/{name}",
        body=body,
        headers={
            "content-type": f"multipart/form-data; boundary={boundary}",
            # What the CLI sends: the platform refuses state changes without it (CSRF).
            "x-faas-request": "1",
        },
    )
    response = conn.getresponse()
    text = response.read()
    put_ms = (time.monotonic_ns() - started) / 1e6
    if response.status not in (200, 201):
        sys.exit(f"deploy answered {response.status}: {text[:300]!r}")
    total = until_200(url, started)
    print(f"{total:.1f}")
    print(f"first-request: deploy answered {response.status} after {put_ms:.1f} ms", file=sys.stderr)


def start(log, url, command):
    with open(log, "w") as out:
        started = time.monotonic_ns()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    print(f"{until_200(url, started, process):.1f} {process.pid}")


def main(argv):
    if len(argv) == 5 and argv[0] == "write":
        write(*argv[1:])
    elif len(argv) == 5 and argv[0] == "deploy":
        deploy(*argv[1:])
    elif len(argv) >= 5 and argv[0] == "start" and argv[3] == "--":
        start(argv[1], argv[2], argv[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
