"""A capturing proxy: what a real agent sends, saved request by request.

    python3 tests/agents/capture.py UPSTREAM_BASE_URL OUT_DIR [PORT]

Listens on 127.0.0.1:PORT (0: any free port; the address is printed as the first line,
`capture listening on http://127.0.0.1:N`), forwards every request to UPSTREAM_BASE_URL (a
`breakerbox serve --demo`) and writes each one to OUT_DIR as NNN.json: method, path, headers
(credentials replaced by "<redacted>") and the body (parsed when it is JSON). The reply is streamed
back unchanged. Used to make tests/fixtures/agents/ (see the README there). Standard library only.
"""

import http.client
import http.server
import json
import os
import sys
import threading
import urllib.parse

SECRET_HEADERS = {"authorization", "x-api-key", "api-key", "cookie", "proxy-authorization"}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"}


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    upstream = urllib.parse.urlsplit(sys.argv[1])
    out_dir = sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) == 4 else 0
    os.makedirs(out_dir, exist_ok=True)
    counter = iter(range(1, 1_000_000))
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("capture: " + (fmt % args) + "\n")

        def handle_any(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {
                k.lower(): ("<redacted>" if k.lower() in SECRET_HEADERS else v)
                for k, v in self.headers.items()
            }
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = body.decode("utf-8", "replace")
            with lock:
                n = next(counter)
            with open(os.path.join(out_dir, f"{n:03}.json"), "w") as f:
                json.dump(
                    {"method": self.command, "path": self.path, "headers": headers, "body": parsed},
                    f,
                    indent=2,
                    ensure_ascii=False,
                )
                f.write("\n")
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
            forward = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            conn.request(self.command, upstream.path.rstrip("/") + self.path, body, forward)
            reply = conn.getresponse()
            self.send_response(reply.status)
            for k, v in reply.getheaders():
                if k.lower() not in HOP_HEADERS:
                    self.send_header(k, v)
            self.send_header("connection", "close")
            self.end_headers()
            while True:
                chunk = reply.read1(65536)
                if not chunk:
                    break
                self.wfile.write(chunk)
                self.wfile.flush()
            conn.close()
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"capture listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
