"""A plain HTTP server as a faas function (`mode: http`): the platform starts it with PORT set,
waits until it accepts connections, proxies requests to it and restarts it if it dies."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, a keep-alive client waits
    # for the delayed ACK (~40 ms) before the body arrives.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass  # one line per request on stderr costs more than the request

    def do_GET(self):
        self.reply({"path": self.path, "greeting": os.environ.get("GREETING", "hello")})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.reply({"path": self.path, "received": self.rfile.read(length).decode("utf-8", "replace")})

    def reply(self, value):
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
