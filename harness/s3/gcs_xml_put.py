"""fake-gcs-server behind a front that adds the one XML API request it lacks.

object_store (cassette's storage client) uploads an object to GCS with the XML API's
`PUT /BUCKET/OBJECT` (precondition `x-goog-if-generation-match`); fake-gcs-server implements the
XML API's GET, HEAD, DELETE and listing but not that upload (fsouza/fake-gcs-server#331). This
front turns that request into the JSON API's media upload of the same object, with the same
precondition (`ifGenerationMatch`), which fake-gcs-server checks and stores itself, and answers as
the XML API does (ETag and x-goog-generation headers, no body). Every other request is passed
through unchanged. Storage, generations, conditions and listings are all fake-gcs-server's.

    python3 gcs_xml_put.py --port P --server BIN -- ARGS...

starts `BIN ARGS... -port Q` on a free port Q of 127.0.0.1 (stopped with this process), waits
for it, then listens on 127.0.0.1:P. Multipart uploads (files over one part) are not translated.
"""

import argparse
import ctypes
import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
BACKEND = ("127.0.0.1", 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    # PR_SET_PDEATHSIG: fake-gcs-server gets SIGTERM when this front dies, even by SIGKILL.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the server's own log has every request
        pass

    def body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def forward(self, method: str, path: str, headers: dict, body: bytes):
        conn = http.client.HTTPConnection(*BACKEND, timeout=300)
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp, data

    def reply(self, status: int, headers, data: bytes) -> None:
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def passthrough(self) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        resp, data = self.forward(self.command, self.path, headers, self.body())
        self.reply(resp.status, resp.getheaders(), data)

    def do_PUT(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = url.path.lstrip("/").split("/", 1)
        is_upload = (
            len(parts) == 2
            and parts[1]
            and parts[0] not in ("storage", "upload", "download", "batch", "_internal")
            and "uploadId" not in query
            and "x-goog-copy-source" not in {k.lower() for k in self.headers.keys()}
        )
        if not is_upload:
            return self.passthrough()
        bucket, name = parts[0], parts[1]
        # The path is percent-encoded by the client: decode, then encode as a query value.
        params = f"uploadType=media&name={quote(unquote(name), safe='')}"
        generation = self.headers.get("x-goog-if-generation-match")
        if generation is not None:
            params += f"&ifGenerationMatch={quote(generation, safe='')}"
        headers = {"Content-Type": self.headers.get("Content-Type") or "application/octet-stream"}
        resp, data = self.forward("POST", f"/upload/storage/v1/b/{quote(bucket, safe='')}/o?{params}", headers, self.body())
        if resp.status != 200:
            # 412 (precondition failed) and the rest: the status is what the client acts on.
            return self.reply(resp.status, [("Content-Type", "application/xml")], b"")
        obj = json.loads(data)
        self.reply(200, [("ETag", f'"{obj.get("etag", "")}"'), ("x-goog-generation", str(obj.get("generation", "")))], b"")

    do_GET = do_HEAD = do_POST = do_DELETE = do_PATCH = passthrough


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("args", nargs="*")
    opts = ap.parse_args()
    global BACKEND
    BACKEND = ("127.0.0.1", free_port())
    child = subprocess.Popen([opts.server, *opts.args, "-port", str(BACKEND[1])], preexec_fn=die_with_parent)

    def stop(*_):
        child.terminate()
        try:
            child.wait(10)
        finally:
            sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    deadline = time.time() + 60
    while True:
        if child.poll() is not None:
            print(f"gcs_xml_put: fake-gcs-server exited with {child.returncode} during start-up", file=sys.stderr)
            return 1
        try:
            socket.create_connection(BACKEND, timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                child.kill()
                print("gcs_xml_put: fake-gcs-server did not open its port in 60 s", file=sys.stderr)
                return 1
            time.sleep(0.2)
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Front)
    server.daemon_threads = True
    print(f"gcs_xml_put: listening on 127.0.0.1:{opts.port}, fake-gcs-server on 127.0.0.1:{BACKEND[1]}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
