"""The HTTP container function of the whole-system scenarios (tests/src/scenarios).

On the port `PORT` names (default 8080), on every address:
- GET /received answers the bodies of every POST so far, a line each;
- any other GET answers {"path": the path it got, "pod": $HOSTNAME};
- POST sleeps the `sleep` seconds of its JSON body, then answers {"slept": n}; a body with
  "log": "text" first prints that text on stdout (the run log tail scenario).
The stand-in runs it as a local program; on a real cluster it is the image built from the
Dockerfile beside it (FAAS_E2E_HTTP_IMAGE).
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECEIVED = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, payload):
        body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/received":
            with LOCK:
                self.answer(b"".join(r + b"\n" for r in RECEIVED))
            return
        self.answer({"path": self.path, "pod": os.environ.get("HOSTNAME", "")})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with LOCK:
            RECEIVED.append(raw)
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        if isinstance(payload.get("log"), str):
            print(payload["log"], flush=True)
        time.sleep(payload.get("sleep", 0))
        self.answer({"slept": payload.get("sleep", 0)})


port = int(os.environ.get("PORT", "8080"))
print(f"serving on {port}", file=sys.stderr, flush=True)
ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
