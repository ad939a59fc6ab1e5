#!/usr/bin/env python3
"""Deterministic mock OpenAI-compatible model server (stdlib only), the model provider of
the OpenClaw interop test (crates/mc-connector/tests/openclaw_interop.rs). It stands in for
a third-party LLM API we cannot call from tests; it answers the way the real APIs do.

Endpoints:
  GET  /v1/models
  POST /v1/chat/completions   (stream=true -> SSE chunks + data: [DONE]; else JSON)
Reply text: "mock says: <last user message text>".
Every request is logged as one JSON line to --log (default: stderr) with method,
path, headers and the parsed body.

Usage: python3 mock_model.py [--host 127.0.0.1] [--port 18080] [--log FILE]
"""
import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_ID = "mock-model"
_log_lock = threading.Lock()
_log_fp = sys.stderr
_counter = 0


def log(entry):
    with _log_lock:
        _log_fp.write(json.dumps(entry, ensure_ascii=False) + "\n")
        _log_fp.flush()


def content_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and p.get("type") in ("text", "input_text"):
                parts.append(p.get("text", ""))
            elif isinstance(p, str):
                parts.append(p)
        return "".join(parts)
    return ""


INTERNAL_PREFIX = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>"
TS_PREFIX = re.compile(r"^\[[^\]]*\d{2}:\d{2}[^\]]*\]\s*")


def clean_user_text(text):
    """OpenClaw wraps the user's text as "[Mon 2026-11-23 10:24 UTC] hello\n\nRuntime: ..."."""
    text = TS_PREFIX.sub("", text, count=1)
    cut = text.find("\n\nRuntime: ")
    if cut >= 0:
        text = text[:cut]
    return text.strip()


def last_user_text(messages):
    # Skip OpenClaw's synthetic "internal context" user message that follows the real one.
    for m in reversed(messages or []):
        if isinstance(m, dict) and m.get("role") == "user":
            t = content_text(m.get("content"))
            if t.lstrip().startswith(INTERNAL_PREFIX):
                continue
            return clean_user_text(t)
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # silence default access log
        pass

    def _send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else None
        except Exception:
            return raw.decode("utf-8", "replace")

    def _log_req(self, body=None):
        log({"ts": time.time(), "method": self.command, "path": self.path,
             "client": self.client_address[0],
             "headers": {k: v for k, v in self.headers.items()}, "body": body})

    def do_GET(self):
        self._log_req()
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "mock"}]})
        elif self.path.rstrip("/") in ("", "/health", "/v1"):
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        global _counter
        body = self._read_body()
        self._log_req(body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        if not isinstance(body, dict):
            self._send_json(400, {"error": {"message": "bad json", "type": "invalid_request_error"}})
            return
        with _log_lock:
            _counter += 1
            cid = f"chatcmpl-mock-{_counter}"
        model = body.get("model") or MODEL_ID
        reply = "mock says: " + last_user_text(body.get("messages"))
        created = int(time.time())
        usage = {"prompt_tokens": 10, "completion_tokens": len(reply.split()),
                 "total_tokens": 10 + len(reply.split())}
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

            def chunk(delta, finish=None, extra=None):
                obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                       "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                if extra:
                    obj.update(extra)
                self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
                self.wfile.flush()

            chunk({"role": "assistant", "content": ""})
            # split the reply into a few word-sized deltas
            words = reply.split(" ")
            for i, w in enumerate(words):
                chunk({"content": (w if i == 0 else " " + w)})
            chunk({}, "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                       "model": model, "choices": [], "usage": usage}
                self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        else:
            self._send_json(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                             "finish_reason": "stop"}],
                "usage": usage})


def main():
    global _log_fp
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--log", default=None)
    a = ap.parse_args()
    if a.log:
        _log_fp = open(a.log, "a", buffering=1)
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    print(f"mock model listening on http://{a.host}:{a.port}/v1", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
