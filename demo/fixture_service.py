#!/usr/bin/env python3
"""Small stand-ins for Sekha, RAE and Jelmore that behave as shared/service-facts.md says:
where the key is configured, which header carries it, what each endpoint answers with a
missing, malformed or wrong key, which data endpoints are open anyway, and what each writes to
its log. The demo fleet and tests run them behind nginx; the real services are tried by hand.

    fixture_service.py --profile sekha   --port 18181 --workdir DIR --log FILE
    fixture_service.py --profile rae     --port 18182 --workdir DIR --log FILE
    fixture_service.py --profile jelmore --port 18183 --workdir DIR --log FILE --access-log FILE
    fixture_service.py --profile notes   --port 18184 --workdir DIR --log FILE
    fixture_service.py --profile jupyter --port 18185 --workdir DIR --log FILE
    fixture_service.py --profile radicale --port 18186 --workdir DIR --log FILE

`notes` is a service no built-in profile knows (tokens in a JSON config): the tests add it with
a profile file, as an operator would.

`restart_fixture.sh` restarts one (stop by its pid file, start again), as `systemctl restart`
would the real service; a start that fails at once is reported by the script with the
service's own words (its stderr) and a non-zero status.

Quirks of the real services reproduced here (service-facts.md, "Learned from running the real
services"):
- Sekha: `/health` answers 503 with an empty body while "Chroma" is down (`--chroma-down`);
  `/metrics` answers 200 all the same. Its database keeps migration rows in `seaql_migrations`,
  and a start right after a stop (`--after-stop`, which `restart_fixture.sh` passes when it
  stopped a running fixture: every restart) on a database that has them exits 1 with
  `UNIQUE constraint failed: seaql_migrations.version` on stderr, until
  `DELETE FROM seaql_migrations;` clears the table. (A first start, such as the demo's, is
  spared, so the demo fleet comes up.)
- RAE: in lite mode (the fixture's only mode) memories live in the process: `POST
  /v2/memories/` stores one without a key, `GET /v2/memories/` lists them, and a restart
  forgets every one. `GET /v2/memories` answers 307 to `/v2/memories/`. A plain print line
  precedes the JSON log.
- Jelmore: one failed request writes two lines sharing `request_id` (`Invalid API key` or
  `Missing API key`, then `Request completed` with 401), and uvicorn's access lines go to the
  same stream (`--log`) unless `--access-log` names a file of their own. `request_id` is
  `X-Correlation-ID` when the client sends one. CORS echoes any `Origin` with credentials
  allowed; `/metrics` answers 503.

Keys are read from DIR/config.toml (Sekha, root-level mcp_api_key; a key after a [table]
header is ignored, like Sekha's own loader) or DIR/.env (RAE's API_KEY, Jelmore's API_KEY_*),
once at start: like the real services, a key change needs a restart.

Sekha limits requests in a fixed 60 s window keyed on the first X-Forwarded-For entry (one
shared bucket without it) and answers 429 text/plain with no Retry-After; the fixture's limit
is --rate-limit (Sekha's own number is a config value). RAE answers CORS from ALLOWED_ORIGINS
(default ["*"], which it sends as `*`).
"""

import argparse
import base64
import urllib.parse
import datetime
import sqlite3
import json
import os
import random
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEKHA_DEFAULT_KEY = "dev_default_key_change_me_1234567890"


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Log:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1, encoding="utf-8")

    def line(self, text):
        self.file.write(text + "\n")

    def structlog(self, event, level="info", **fields):
        # structlog masks any field whose name contains key/secret/password.
        masked = {k: ("***" if any(w in k for w in ("key", "secret", "password")) and k not in ("key_prefix", "key_name", "key_count", "key_names") else v) for k, v in fields.items()}
        self.line(json.dumps({**masked, "event": event, "level": level, "timestamp": now_iso()}))

    def tracing(self, level, target, message):
        colour = {"INFO": "32", "WARN": "33", "ERROR": "31"}.get(level, "34")
        self.line(f"\x1b[2m{now_iso()}\x1b[0m \x1b[{colour}m{level:>5}\x1b[0m \x1b[2m{target}\x1b[0m\x1b[2m:\x1b[0m {message}")


def read_dotenv(path):
    values = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for raw in f:
                line = raw.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    values[k.strip()] = v.strip().strip('"').strip("'")
    return values


class Service:
    """One profile's behaviour. `handle` returns (status, headers, body)."""

    rate_limit = None
    # Whether `handle` takes the request's query string too.
    wants_query = False

    def __init__(self, workdir, log, access_log):
        self.workdir, self.log, self.access_log = workdir, log, access_log


class FixedWindow:
    """Sekha's limiter: a fixed 60 s window per first X-Forwarded-For entry."""

    def __init__(self, per_minute):
        self.per_minute, self.lock, self.windows = per_minute, threading.Lock(), {}

    def allow(self, headers):
        bucket = (headers.get("X-Forwarded-For") or "").split(",")[0].strip()
        window = int(time.time() // 60)
        with self.lock:
            start, count = self.windows.get(bucket, (window, 0))
            if start != window:
                start, count = window, 0
            self.windows[bucket] = (start, count + 1)
            return count < self.per_minute


SEKHA_MIGRATIONS = [f"m20241211_00{n}00000" for n in range(100, 800, 100)]
SEKHA_UNIQUE_ERROR = ("Error: Execution Error: error returned from database: (code: 1555) "
                      "UNIQUE constraint failed: seaql_migrations.version")


def sekha_migrate(workdir, log, after_stop):
    """Sekha's migration bug: its migration rows are inserted again on every start, so a start
    on a database that has them fails. Returns False (after saying why on stderr) if so."""
    db = sqlite3.connect(os.path.join(workdir, "sekha.db"))
    try:
        db.execute("CREATE TABLE IF NOT EXISTS seaql_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        have = db.execute("SELECT COUNT(*) FROM seaql_migrations").fetchone()[0]
        log.tracing("INFO", "sekha_controller::storage::db", "Applying migrations...")
        if have and after_stop:
            print(SEKHA_UNIQUE_ERROR, file=sys.stderr)
            print("\nCaused by:\n    error returned from database: (code: 1555) UNIQUE constraint failed: seaql_migrations.version", file=sys.stderr)
            return False
        if not have:
            db.executemany("INSERT INTO seaql_migrations VALUES (?, ?)", [(v, now_iso()) for v in SEKHA_MIGRATIONS])
            db.commit()
        return True
    finally:
        db.close()


class Sekha(Service):
    chroma_down = False

    def __init__(self, *args):
        super().__init__(*args)
        path = os.path.join(self.workdir, "config.toml")
        config = {}
        if os.path.exists(path):
            with open(path, "rb") as f:
                config = tomllib.load(f)
        # Only a root-level key counts; one inside a [table] is ignored.
        self.key = os.environ.get("SEKHA__MCP_API_KEY") or config.get("mcp_api_key") or SEKHA_DEFAULT_KEY
        self.log.tracing("INFO", "sekha_controller", "Starting Sekha controller")
        self.log.tracing("INFO", "sekha_controller", "🔒 API authentication enabled")
        # Conversations live in sekha.db in the working directory, as Sekha's own do.
        self.db_path = os.path.join(self.workdir, "sekha.db")
        with sqlite3.connect(self.db_path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, label TEXT NOT NULL, created_at TEXT NOT NULL)")

    def conversations(self, method, path, body):
        """/api/v1/conversations: list, create, delete; open with no auth, as on a real Sekha."""
        db = sqlite3.connect(self.db_path, timeout=5)
        try:
            rest = path[len("/api/v1/conversations"):].strip("/")
            if method == "GET" and not rest:
                rows = db.execute("SELECT id, label, created_at FROM conversations ORDER BY created_at").fetchall()
                return 200, {}, json.dumps({"conversations": [{"id": r[0], "label": r[1], "created_at": r[2]} for r in rows]}).encode()
            if method == "POST" and not rest:
                data = json.loads(body or b"{}")
                cid = str(uuid.uuid4())
                db.execute("INSERT INTO conversations VALUES (?, ?, ?)", (cid, str(data.get("label", "")), now_iso()))
                db.commit()
                return 201, {}, json.dumps({"id": cid}).encode()
            if method == "DELETE" and rest:
                gone = db.execute("DELETE FROM conversations WHERE id = ?", (rest,)).rowcount
                db.commit()
                return (200, {}, b'{"deleted":true}') if gone else (404, {}, b'{"error":"Not found"}')
            return 405, {}, b'{"error":"Method not allowed"}'
        finally:
            db.close()

    def handle(self, method, path, headers, body):
        if self.rate_limit is not None and not self.rate_limit.allow(headers):
            return 429, {"Content-Type": "text/plain"}, b"Rate limit exceeded. Please try again later."
        if path == "/health":
            # Sekha's /health also asks its vector database: 503, empty, while Chroma is down.
            return (503, {}, b"") if self.chroma_down else (200, {}, b'{"status":"ok"}')
        if path == "/metrics":
            return 200, {"Content-Type": "text/plain"}, b"sekha_conversations_total 0\n"
        if path.startswith("/api/v1/conversations"):
            return self.conversations(method, path, body)  # open with no auth: a real finding
        if path.startswith("/api/v1/"):
            return 200, {}, b'{"conversations":[]}'
        if method == "POST" and path.startswith("/mcp/tools/"):
            auth = headers.get("Authorization")
            if auth is None:
                return 401, {}, b'{"error":"Missing authorization header"}'
            if not auth.startswith("Bearer "):
                return 400, {}, b'{"error":"Invalid authorization format"}'
            presented = auth[len("Bearer "):]
            if len(self.key) < 32 or presented != self.key:
                return 401, {}, b'{"error":"Invalid API key"}'
            return 200, {}, b'{"result":"ok"}'
        return 404, {}, b'{"error":"Not found"}'


class Rae(Service):
    def __init__(self, *args):
        super().__init__(*args)
        env = {**read_dotenv(os.path.join(self.workdir, ".env")), **{k: v for k, v in os.environ.items() if k in ("API_KEY", "ENABLE_API_KEY_AUTH", "ALLOWED_ORIGINS")}}
        self.key = env.get("API_KEY", "secret")
        self.enabled = env.get("ENABLE_API_KEY_AUTH", "false").lower() == "true"
        try:
            self.origins = json.loads(env.get("ALLOWED_ORIGINS", '["*"]'))
        except ValueError:
            self.origins = ["*"]
        # Lite mode: memories live in this process only; a restart forgets them all.
        self.memories = []
        self.log.line("RAE lite profile: in-memory storage (RAE_DB_MODE=ignore)")
        self.log.structlog("security_settings", api_key_auth=self.enabled, jwt_auth=False, rate_limiting=False)

    def handle(self, method, path, headers, body):
        status, extra, out = self.route(method, path, headers, body)
        origin = headers.get("Origin")
        if origin is not None:
            if "*" in self.origins:
                extra = {**extra, "Access-Control-Allow-Origin": "*"}
            elif origin in self.origins:
                extra = {**extra, "Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return status, extra, out

    def route(self, method, path, headers, body):
        if method == "OPTIONS":
            return 200, {"Access-Control-Allow-Methods": "GET, POST, PUT, DELETE"}, b""
        if path in ("/health", "/ready", "/live", "/metrics", "/docs", "/openapi.json"):
            return 200, {}, b'{"status":"healthy"}'
        if path.startswith("/v2/compliance/") or path.startswith("/v2/federation/"):
            if not self.enabled:
                return 200, {}, b'{"circuit_breakers":[]}'
            # With JWT auth off (the default), any Bearer token is accepted.
            if (headers.get("Authorization") or "").startswith("Bearer "):
                return 200, {}, b'{"circuit_breakers":[]}'
            presented = headers.get("X-API-Key")
            if presented is not None and presented == self.key:
                return 200, {}, b'{"circuit_breakers":[]}'
            if presented is not None:
                self.log.structlog("invalid_api_key", "warning", provided_key=presented, logger="apps.memory_api.security.auth")
            self.log.structlog("authentication_required_no_credentials", "warning", logger="apps.memory_api.security.auth")
            return 401, {}, b'{"error":{"code":"401","message":"Authentication required. Provide either a Bearer token or an X-API-Key header."}}'
        if path == "/v2/memories":
            return 307, {"Location": "/v2/memories/"}, b""
        if path == "/v2/memories/" and method == "POST":
            # Open even with auth on: anyone can write a memory.
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return 422, {}, b'{"detail":"invalid JSON"}'
            memory = {"id": str(uuid.uuid4()), "content": str(data.get("content", "")), "created_at": now_iso()}
            self.memories.append(memory)
            return 200, {}, json.dumps({"id": memory["id"], "message": "Memory stored"}).encode()
        if path == "/v2/memories/" and method == "GET":
            return 200, {}, json.dumps({"memories": self.memories, "total": len(self.memories)}).encode()
        if path.startswith("/v2/memories"):
            return 200, {}, b'{"memories":[]}'  # open even with auth on
        return 404, {}, b'{"detail":"Not Found"}'


class Jelmore(Service):
    PERMISSIONS = {"admin": ["read", "write", "admin", "delete"], "development": ["read", "write", "admin", "delete"], "client": ["read", "write"], "service": ["read", "write"]}

    def __init__(self, *args):
        super().__init__(*args)
        env = {**read_dotenv(os.path.join(self.workdir, ".env")), **os.environ}
        self.keys = {v: k[len("API_KEY_"):].lower() for k, v in env.items() if k.startswith("API_KEY_") and v}
        self.log.structlog("API keys loaded", key_count=len(self.keys), key_names=sorted(self.keys.values()))

    def handle(self, method, path, headers, body):
        client = (headers.get("X-Forwarded-For") or "127.0.0.1").split(",")[0].strip()
        # Jelmore binds one id to every line about a request: the client's X-Correlation-ID,
        # else a new one.
        request_id = headers.get("X-Correlation-ID") or str(uuid.uuid4())
        ids = {"correlation_id": request_id, "request_id": request_id}
        self.log.structlog("Request started", method=method, path=path, client_ip=client, user_agent=headers.get("User-Agent"), **ids)
        status, extra, out = self.route(method, path, headers, client, ids)
        self.log.structlog("Request completed", method=method, path=path, status_code=status, duration_ms=0.59, client_ip=client, **ids)
        origin = headers.get("Origin")
        if origin is not None:
            # CORS echoes any origin, credentials allowed (also over plain HTTP).
            extra = {**extra, "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}
        return status, extra, out

    def route(self, method, path, headers, client, ids):
        if method == "OPTIONS":
            return 200, {"Access-Control-Allow-Methods": "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"}, b"OK"
        if path == "/metrics":
            return 503, {}, b'{"detail":"metrics unavailable"}'
        if path in ("/health", "/api/v1/docs"):
            return 200, {}, b'{"status":"healthy"}'
        if path.startswith("/api/v1/v1/"):
            presented = headers.get("X-API-Key")
            if presented is None:
                self.log.structlog("Missing API key", "warning", path=path, client=client, **ids)
                return 401, {"www-authenticate": 'APIKey realm="X-API-Key"'}, b'{"detail":"API key required"}'
            name = self.keys.get(presented)
            if name is None:
                prefix = presented[:10] if len(presented) > 10 else "short_key"
                self.log.structlog("Invalid API key", "warning", path=path, key_prefix=prefix, client=client, **ids)
                return 401, {}, b'{"detail":"Invalid API key"}'
            self.log.structlog("API key authenticated", path=path, key_name=name, permissions=self.PERMISSIONS.get(name, ["read"]), client=client, **ids)
            return 200, {}, b'{"sessions":[]}'
        return 404, {}, b'{"detail":"Not Found"}'


class Notes(Service):
    """A service none of Gatehouse's built-in profiles knows, added by writing a profile: its
    API tokens are a list in a JSON config (`auth.tokens[*].token`) beside a signing secret,
    read once at start; `Authorization: Bearer` carries one (or `?token=`, or HTTP Basic with
    any user and the token as password); its own log line names the client and the token's
    first characters on a failed sign-in."""

    wants_query = True

    def __init__(self, *args):
        super().__init__(*args)
        with open(os.path.join(self.workdir, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        self.tokens = {t["token"]: t.get("name", "") for t in config["auth"]["tokens"] if t.get("token")}
        self.log.line(f"{self.stamp()} INFO notes: started with {len(self.tokens)} token(s)")

    @staticmethod
    def stamp():
        return now_iso()

    def handle(self, method, path, headers, body, query="", peer="127.0.0.1"):
        if path == "/health":
            return 200, {}, b'{"ok":true}'
        if path.startswith("/api/notes"):
            client = (headers.get("X-Forwarded-For") or "127.0.0.1").split(",")[0].strip()
            auth = headers.get("Authorization") or ""
            presented = None
            if auth.startswith("Bearer "):
                presented = auth[len("Bearer "):]
            elif auth.startswith("Basic "):
                try:
                    presented = base64.b64decode(auth[len("Basic "):]).decode().split(":", 1)[1]
                except (ValueError, IndexError, UnicodeDecodeError):
                    return 400, {}, b'{"error":"bad credentials"}'
            elif "token" in urllib.parse.parse_qs(query):
                presented = urllib.parse.parse_qs(query)["token"][0]
            if presented is None:
                return 401, {}, b'{"error":"token required"}'
            if presented not in self.tokens:
                self.log.line(f"{self.stamp()} WARNING notes.auth: sign-in failed from {client} with token '{presented[:6]}'")
                return 401, {}, b'{"error":"invalid token"}'
            return 200, {}, b'{"notes":[]}'
        return 404, {}, b'{"error":"not found"}'


class Jupyter(Service):
    """Jupyter Server 2.x as tried (jupyter-server 2.21.1): the token is read once at start from
    DIR/jupyter_server_config.json (`IdentityProvider.token`, else the deprecated
    `ServerApp.token`; the file wins over JUPYTER_TOKEN, which is only a default); an empty
    token turns authentication off. `Authorization: token|bearer <t>` (any case) or
    `?token=<t>` presents it; every API refusal is 403 `{"message": "Forbidden", ...}` and
    writes two W lines naming the socket peer (never X-Forwarded-For), a ?token= value as
    [secret]; accepted requests log nothing at the default level. /api answers its version
    without a token; a POST without a token is refused by the XSRF check, also 403."""

    wants_query = True
    VERSION = "2.21.1"

    def __init__(self, *args):
        super().__init__(*args)
        path = os.path.join(self.workdir, "jupyter_server_config.json")
        config = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
        token = (config.get("IdentityProvider") or {}).get("token")
        if token is None:
            token = (config.get("ServerApp") or {}).get("token")
            if token is not None:
                self.line("W", "ServerApp.token config is deprecated in 2.0. Use IdentityProvider.token.")
        if token is None:
            token = os.environ.get("JUPYTER_TOKEN") or uuid.uuid4().hex + uuid.uuid4().hex[:16]
        self.token = token
        if token == "":
            self.line("W", "All authentication is disabled.  Anyone who can connect to this server will be able to run code.")
        self.line("I", f"Jupyter Server {self.VERSION} is running at:")
        self.line("I", "http://127.0.0.1/?token=...")

    def line(self, level, message):
        now = datetime.datetime.now()
        self.log.line(f"[{level} {now.strftime('%Y-%m-%d %H:%M:%S')}.{now.microsecond // 1000:03d} ServerApp] {message}")

    def presented(self, headers, query):
        auth = headers.get("Authorization") or ""
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            return value.strip()
        values = urllib.parse.parse_qs(query).get("token")
        return values[0].strip() if values else None

    def handle(self, method, path, headers, body, query="", peer="127.0.0.1"):
        if path == "/api":
            return 200, {}, json.dumps({"version": self.VERSION}).encode()
        if not path.startswith("/api/"):
            return 404, {}, b'{"message": "Not Found", "reason": null}'
        shown = path + ("?" + "&".join(
            f"{k}=[secret]" if k == "token" else f"{k}={v}"
            for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)) if query else "")
        given = self.presented(headers, query)
        if self.token != "" and given != self.token:
            if method == "POST":
                self.line("W", f"403 POST {path} ({peer}): '_xsrf' argument missing from POST")
                self.line("W", "wrote error: \"'_xsrf' argument missing from POST\"")
                self.line("W", f"403 POST {shown} (@{peer}) 0.59ms referer=None")
                return 403, {}, b'{"message": "\'_xsrf\' argument missing from POST", "reason": null}'
            self.line("W", "wrote error: 'Forbidden'")
            self.line("W", f"403 {method} {shown} (@{peer}) 0.52ms referer=None")
            return 403, {}, b'{"message": "Forbidden", "reason": null}'
        extra = {}
        origin = headers.get("Origin")
        if origin is not None:
            # A token-authenticated request is allowed from any Origin, which is reflected.
            extra["Access-Control-Allow-Origin"] = origin
        if path == "/api/status":
            return 200, extra, b'{"connections": 0, "kernels": 0}'
        if path == "/api/sessions":
            return 200, extra, b"[]"
        if path.startswith("/api/contents"):
            return 200, extra, b'{"name": "", "path": "", "type": "directory", "content": []}'
        return 404, extra, b'{"message": "Not Found", "reason": null}'


class Radicale(Service):
    """Radicale 3.9 (CalDAV/CardDAV) as tried: an INI config (DIR/config) names the htpasswd
    file (`[auth] htpasswd_filename`, relative to DIR here) and the delay after a refusal
    (`[auth] delay`, 1 s by default, slept times 0.5 to 1.5); passwords are checked against the
    file on every sign-in (it is re-read each time; `htpasswd -i -v` checks the bcrypt hash, as
    Radicale's bcrypt module does), the config only at start. HTTP Basic only: a Bearer token is
    anonymous; a Basic header that does not decode is a 500 from its exception handler. Its log
    (stderr in the real server) writes each failed sign-in as two WARNING lines, the second
    naming the socket peer and an X-Forwarded-For value as sent (it trusts no proxy list); a
    success names no address. `/.web/` is its web UI, open to anyone."""

    wants_query = True
    REALM = "Radicale - Password Required"

    def __init__(self, *args):
        super().__init__(*args)
        import configparser
        self.config_path = os.path.join(self.workdir, "config")
        config = configparser.ConfigParser()
        config.read(self.config_path, encoding="utf-8")
        users = config.get("auth", "htpasswd_filename", fallback="/etc/radicale/users")
        self.users = users if os.path.isabs(users) else os.path.join(self.workdir, users)
        self.delay = config.getfloat("auth", "delay", fallback=1.0)
        self.thread = 0
        self.lock = threading.Lock()
        self.line("INFO", f"Loaded config file '{self.config_path}'", main=True)
        self.line("INFO", "auth type is 'radicale.auth.htpasswd'", main=True)
        self.line("INFO", f"auth.delay: {self.delay:f} seconds", main=True)
        self.line("INFO", "Radicale server ready", main=True)
        import signal
        signal.signal(signal.SIGTERM, self.stop)

    def stop(self, *_):
        self.line("INFO", "Stopping Radicale", main=True)
        os._exit(0)

    def line(self, level, message, main=False, ident=None):
        stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
        ident = ident or (str(os.getpid()) if main else f"{os.getpid()}/Thread-? (process_request_thread)")
        self.log.line(f"[{stamp}] [{ident}] [{level}] {message}")

    def pause(self):
        """Radicale's sleep after a refusal: delay times 0.5 to 1.5. None at delay 0 (a sleep
        of nothing fails under libfaketime, which the dated test runs use)."""
        if self.delay > 0:
            time.sleep(self.delay * (0.5 + random.random()))

    def verify(self, user, password):
        """'ok', 'wrong' or 'unknown', as `htpasswd -v` reads the file now."""
        done = subprocess.run(["htpasswd", "-i", "-v", self.users, user], input=password.encode(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return {0: "ok", 6: "unknown"}.get(done.returncode, "wrong")

    def handle(self, method, path, headers, body, query="", peer="127.0.0.1"):
        with self.lock:
            self.thread += 1
            ident = f"{os.getpid()}/Thread-{self.thread} (process_request_thread)"
        forwarded = headers.get("X-Forwarded-For")
        source = peer + (f" (forwarded for {forwarded!r})" if forwarded else "")
        self.line("INFO", f"{method} request for {path!r} received from {source} HTTP/1.1", ident=ident)
        if path == "/" and method == "GET":
            return 302, {"Location": "/.web", "Content-Type": "text/plain; charset=utf-8"}, b"Redirected to /.web"
        if path.startswith("/.web"):
            return 200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><title>Radicale Web Interface</title>"
        if method == "OPTIONS":
            return 200, {"Allow": "DELETE, GET, HEAD, MKCALENDAR, MKCOL, MOVE, OPTIONS, PROPFIND, PROPPATCH, PUT, REPORT", "DAV": "1, 2, 3, calendar-access, addressbook, extended-mkcol", "Content-Type": "text/plain"}, b""
        auth = headers.get("Authorization") or ""
        user = None
        if auth.startswith("Basic"):
            try:
                user, password = base64.b64decode(auth[len("Basic"):].strip(), validate=True).decode().split(":", 1)
            except (ValueError, UnicodeDecodeError) as e:
                self.line("ERROR", f"An exception occurred during {method} request on {path!r}: {e}", ident=ident)
                return 500, {"Content-Type": "text/plain"}, b"A server error occurred.  Please contact the administrator."
            verdict = self.verify(user, password)
            if verdict != "ok":
                if verdict == "unknown":
                    self.line("WARNING", f"Login verification user not found (htpasswd): {user!r}", ident=ident)
                else:
                    self.line("WARNING", f"Login verification failed for user: {user!r} (htpasswd/bcrypt/BCRYPT)", ident=ident)
                self.line("WARNING", f"Failed login attempt from {source}: {user!r} (htpasswd)", ident=ident)
                user = None
            else:
                self.line("INFO", f"Successful login: {user!r} (htpasswd)", ident=ident)
        if user is None:
            if not auth.startswith("Basic"):
                self.line("NOTICE", f"Access to {path!r} denied for anonymous user", ident=ident)
            self.pause()
            return 401, {"WWW-Authenticate": f'Basic realm="{self.REALM}"', "Content-Type": "text/plain; charset=utf-8"}, b"Access to the requested resource forbidden."
        if method == "PROPFIND":
            return 207, {"Content-Type": "text/xml; charset=utf-8"}, (
                b'<?xml version="1.0" encoding="utf-8"?>\n<multistatus xmlns="DAV:"><response><href>'
                + path.encode() + b"</href><propstat><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>")
        self.pause()
        return 403, {"Content-Type": "text/plain; charset=utf-8"}, b"Directory listings are not supported."


PROFILES = {"sekha": Sekha, "rae": Rae, "jelmore": Jelmore, "notes": Notes, "jupyter": Jupyter,
            "radicale": Radicale}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=PROFILES, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--access-log", help="uvicorn's access lines (Jelmore), in a file of their own; "
                        "without it they go to --log with the rest of its output, as under systemd or compose")
    parser.add_argument("--chroma-down", action="store_true",
                        help="Sekha: its vector database is unreachable, so /health answers 503 (the API works)")
    parser.add_argument("--after-stop", action="store_true",
                        help="this start follows a stop of the running fixture (restart_fixture.sh passes it): "
                        "Sekha then fails on a database with migration rows, as it does on every restart")
    parser.add_argument("--pid-file", help="write the process id here (for restart scripts)")
    parser.add_argument("--fail-start-flag", help="if this file exists, remove it and exit 1 at start "
                        "(a start that fails once, with an error no profile knows a fix for)")
    parser.add_argument("--rate-limit", type=int, default=100,
                        help="Sekha: requests per 60 s window per X-Forwarded-For address")
    args = parser.parse_args()
    if args.fail_start_flag and os.path.exists(args.fail_start_flag):
        os.remove(args.fail_start_flag)
        print("Error: Address already in use (os error 98)", file=sys.stderr)
        sys.exit(1)
    log = Log(args.log)
    if args.profile == "sekha" and not sekha_migrate(args.workdir, log, args.after_stop):
        sys.exit(1)
    if args.pid_file:
        with open(args.pid_file, "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
    # uvicorn's access lines: a file of their own, or the service's stream (Jelmore).
    access = Log(args.access_log) if args.access_log else (log if args.profile == "jelmore" else None)
    if args.profile == "jelmore" and not args.access_log:
        log.line(f"INFO:     Started server process [{os.getpid()}]")
        log.line("INFO:     Waiting for application startup.")
    service = PROFILES[args.profile](args.workdir, log, access)
    if args.profile == "sekha":
        service.rate_limit = FixedWindow(args.rate_limit)
        service.chroma_down = args.chroma_down

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            args = (self.command, path, self.headers, body) + ((query, self.client_address[0]) if service.wants_query else ())
            status, extra, out = service.handle(*args)
            self.send_response(status)
            if "Content-Type" not in extra:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(out)
            if access is not None:
                reason = self.responses.get(status, ("",))[0]
                access.line(f'INFO:     {self.client_address[0]}:{self.client_address[1]} - "{self.command} {self.path} HTTP/1.1" {status} {reason}')

        do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PROPFIND = do

        def log_message(self, *args):
            pass  # the service's own log says what the real service says, nothing more

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"{args.profile} fixture on 127.0.0.1:{args.port}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
