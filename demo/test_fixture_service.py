"""The fixture services must behave as shared/service-facts.md says the real ones do: the
demo fleet and the tests built on it are only as honest as these stand-ins.

    python3 -m unittest demo/test_fixture_service.py
"""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "k" * 40


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, what):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not start")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Fixture:
    def __init__(self, profile, files, extra=(), access_log=True):
        self.dir = tempfile.TemporaryDirectory()
        for name, text in files.items():
            with open(os.path.join(self.dir.name, name), "w", encoding="utf-8") as f:
                f.write(text)
        self.profile = profile
        self.port = free_port()
        self.log = os.path.join(self.dir.name, "service.log")
        self.access = os.path.join(self.dir.name, "access.log")
        self.args = ["--profile", profile, "--port", str(self.port), "--workdir", self.dir.name, "--log", self.log,
                     *(["--access-log", self.access] if access_log else []), *extra]
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fixture_service.py"), *self.args],
                                     stderr=subprocess.DEVNULL)
        wait_listening(self.port, f"{profile} fixture")

    def restart(self):
        """Restart through restart_fixture.sh, as the agent does; returns its exit status and stderr."""
        pid_file = os.path.join(self.dir.name, "service.pid")
        with open(pid_file, "w", encoding="utf-8") as f:
            f.write(str(self.proc.pid))
        done = subprocess.run(["sh", os.path.join(HERE, "restart_fixture.sh"), pid_file, *self.args],
                              capture_output=True, text=True, timeout=30)
        self.proc.wait(timeout=5)
        self.pid_file = pid_file
        return done.returncode, done.stderr

    def restarted_pid(self):
        with open(self.pid_file, encoding="utf-8") as f:
            return int(f.read())

    def call(self, method, path, headers=None, body=None, follow=True):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method, data=body)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        opener = urllib.request.build_opener() if follow else urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=3) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)

    def log_lines(self):
        with open(self.log, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        pid_file = getattr(self, "pid_file", None)
        if pid_file and os.path.exists(pid_file):
            try:
                os.kill(self.restarted_pid(), 15)
            except (OSError, ValueError):
                pass
        self.dir.cleanup()


class SekhaFacts(unittest.TestCase):
    def setUp(self):
        # A key after a [table] header lands inside the table and is ignored.
        self.ignored = Fixture("sekha", {"config.toml": f'[server]\nmcp_api_key = "{KEY}"\n'})
        self.sekha = Fixture("sekha", {"config.toml": f'mcp_api_key = "{KEY}"\n[server]\nport = 1\n'})

    def tearDown(self):
        self.ignored.close()
        self.sekha.close()

    def test_bearer_header_answers(self):
        stats = "/mcp/tools/memory_stats"
        self.assertEqual(self.sekha.call("POST", stats, body=b"{}")[:2], (401, '{"error":"Missing authorization header"}'))
        self.assertEqual(self.sekha.call("POST", stats, {"Authorization": KEY}, b"{}")[:2], (400, '{"error":"Invalid authorization format"}'))
        self.assertEqual(self.sekha.call("POST", stats, {"Authorization": "bearer " + KEY}, b"{}")[0], 400, "Bearer is case-sensitive")
        self.assertEqual(self.sekha.call("POST", stats, {"Authorization": "Bearer wrong"}, b"{}")[:2], (401, '{"error":"Invalid API key"}'))
        self.assertEqual(self.sekha.call("POST", stats, {"Authorization": "Bearer " + KEY}, b"{}")[0], 200)

    def test_key_inside_a_table_is_ignored_and_the_default_key_works(self):
        stats = "/mcp/tools/memory_stats"
        self.assertEqual(self.ignored.call("POST", stats, {"Authorization": "Bearer " + KEY}, b"{}")[0], 401)
        default = "dev_default_key_change_me_1234567890"
        self.assertEqual(self.ignored.call("POST", stats, {"Authorization": "Bearer " + default}, b"{}")[0], 200)

    def test_data_endpoints_are_open_and_nothing_is_logged_per_request(self):
        self.assertEqual(self.sekha.call("GET", "/api/v1/conversations")[0], 200, "open with no auth")
        before = len(self.sekha.log_lines())
        self.sekha.call("POST", "/mcp/tools/memory_stats", {"Authorization": "Bearer wrong"}, b"{}")
        self.assertEqual(len(self.sekha.log_lines()), before, "Sekha logs nothing per request")
        self.assertIn("API authentication enabled", self.sekha.log_lines()[-1])
        self.assertIn("\x1b[", self.sekha.log_lines()[-1], "ANSI colours")


class SekhaHealthAndRestart(unittest.TestCase):
    def test_health_is_503_while_chroma_is_down_but_the_api_answers(self):
        sekha = Fixture("sekha", {"config.toml": f'mcp_api_key = "{KEY}"\n'}, ["--chroma-down"])
        try:
            status, body, _ = sekha.call("GET", "/health")
            self.assertEqual((status, body), (503, ""), "503 with an empty body, as the real one without Chroma")
            self.assertEqual(sekha.call("GET", "/metrics")[0], 200, "/metrics says the API answers")
            self.assertEqual(sekha.call("POST", "/mcp/tools/memory_stats", {"Authorization": "Bearer " + KEY}, b"{}")[0],
                             200, "and the API works")
        finally:
            sekha.close()

    def test_a_restart_on_an_existing_database_fails_until_the_migrations_are_cleared(self):
        sekha = Fixture("sekha", {"config.toml": f'mcp_api_key = "{KEY}"\n'})
        try:
            status, stderr = sekha.restart()
            self.assertEqual(status, 1, "the restart reports the start that failed")
            self.assertIn("UNIQUE constraint failed: seaql_migrations.version", stderr,
                          "in the service's own words, from its stderr")
            with self.assertRaises(OSError, msg="nothing listens after the failed start"):
                socket.create_connection(("127.0.0.1", sekha.port), timeout=0.5).close()
            db = sqlite3.connect(os.path.join(sekha.dir.name, "sekha.db"))
            db.execute("DELETE FROM seaql_migrations;")
            db.commit()
            db.close()
            status, stderr = sekha.restart()
            self.assertEqual(status, 0, f"with the table cleared it starts: {stderr}")
            wait_listening(sekha.port, "sekha after the fix")
            self.assertEqual(sekha.call("GET", "/metrics")[0], 200, "and answers")
        finally:
            sekha.close()


    def test_a_start_after_a_stop_by_someone_else_is_spared_so_the_demo_comes_up(self):
        sekha = Fixture("sekha", {"config.toml": f'mcp_api_key = "{KEY}"\n'})
        try:
            # The demo stops its fixtures itself, then starts them through the script.
            sekha.proc.terminate()
            sekha.proc.wait(timeout=5)
            status, stderr = sekha.restart()
            self.assertEqual(status, 0, f"nothing running was stopped, so the start is a first start: {stderr}")
            wait_listening(sekha.port, "sekha after the demo's own stop")
        finally:
            sekha.close()


class SekhaDatabase(unittest.TestCase):
    def test_conversations_live_in_sekha_db_and_can_be_deleted_without_a_key(self):
        sekha = Fixture("sekha", {"config.toml": f'mcp_api_key = "{KEY}"\n'})
        try:
            status, body, _ = sekha.call("POST", "/api/v1/conversations", body=b'{"label": "hello"}')
            self.assertEqual(status, 201, "created with no key: the open data endpoint")
            cid = json.loads(body)["id"]
            listed = json.loads(sekha.call("GET", "/api/v1/conversations")[1])["conversations"]
            self.assertEqual([c["label"] for c in listed], ["hello"], "listed back")
            self.assertTrue(os.path.exists(os.path.join(sekha.dir.name, "sekha.db")), "kept in sekha.db")
            self.assertEqual(sekha.call("DELETE", f"/api/v1/conversations/{cid}")[0], 200, "and deleted with no key")
            self.assertEqual(json.loads(sekha.call("GET", "/api/v1/conversations")[1])["conversations"], [], "gone")
        finally:
            sekha.close()


class SekhaRateLimit(unittest.TestCase):
    def test_a_fixed_window_per_forwarded_address_answers_429_in_plain_text(self):
        sekha = Fixture("sekha", {"config.toml": f'mcp_api_key = "{KEY}"\n'}, ["--rate-limit", "3"])
        try:
            statuses = [sekha.call("GET", "/health", {"X-Forwarded-For": "192.0.2.1"})[0] for _ in range(4)]
            self.assertEqual(statuses, [200, 200, 200, 429], "the fourth request in the window is limited")
            status, body, headers = sekha.call("GET", "/health", {"X-Forwarded-For": "192.0.2.1"})
            self.assertEqual(body, "Rate limit exceeded. Please try again later.", "Sekha's 429 text")
            self.assertTrue(headers["Content-Type"].startswith("text/plain"), "429 is text/plain")
            self.assertNotIn("Retry-After", headers, "Sekha sends no Retry-After")
            other = sekha.call("GET", "/health", {"X-Forwarded-For": "198.51.100.7"})[0]
            self.assertEqual(other, 200, "another forwarded address has its own bucket (spoofable)")
        finally:
            sekha.close()


class RaeFacts(unittest.TestCase):
    def setUp(self):
        self.rae = Fixture("rae", {".env": f"API_KEY={KEY}\nENABLE_API_KEY_AUTH=true\n"})

    def tearDown(self):
        self.rae.close()

    def test_key_any_bearer_and_open_memories(self):
        path = "/v2/compliance/circuit-breakers"
        status, body, _ = self.rae.call("GET", path, {"X-API-Key": "wrong"})
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body)["error"]["code"], "401")
        self.assertEqual(self.rae.call("GET", path, {"X-API-Key": KEY})[0], 200)
        self.assertEqual(self.rae.call("GET", path, {"Authorization": "Bearer anything"})[0], 200, "any Bearer with JWT off")
        self.assertEqual(self.rae.call("GET", "/v2/memories/search")[0], 200, "open even with auth on")

    def test_cors_answers_any_origin_with_a_star_by_default(self):
        status, _, headers = self.rae.call("GET", "/health", {"Origin": "https://evil.example"})
        self.assertEqual(headers.get("Access-Control-Allow-Origin"), "*", "ALLOWED_ORIGINS defaults to *")
        status, _, headers = self.rae.call("OPTIONS", "/v2/memories", {"Origin": "https://evil.example",
                                                                        "Access-Control-Request-Method": "GET"})
        self.assertEqual((status, headers.get("Access-Control-Allow-Origin")), (200, "*"), "preflight too")

    def test_wrong_key_gives_the_two_structlog_lines(self):
        self.rae.call("GET", "/v2/compliance/circuit-breakers", {"X-API-Key": "wrong"})
        raw = self.rae.log_lines()
        self.assertFalse(raw[0].startswith("{"), "a plain print line comes before the JSON log")
        lines = [json.loads(line) for line in raw[1:]]
        self.assertEqual(lines[0]["event"], "security_settings")
        self.assertEqual([line["event"] for line in lines[-2:]], ["invalid_api_key", "authentication_required_no_credentials"])
        self.assertEqual(lines[-2]["provided_key"], "***", "keys are masked")
        self.assertTrue(lines[-1]["timestamp"].endswith("Z"))


class RaeLiteMode(unittest.TestCase):
    def test_memories_are_written_without_a_key_and_lost_on_restart(self):
        rae = Fixture("rae", {".env": f"API_KEY={KEY}\nENABLE_API_KEY_AUTH=true\n"})
        try:
            status, _, headers = rae.call("GET", "/v2/memories", follow=False)
            self.assertEqual((status, headers.get("Location")), (307, "/v2/memories/"), "redirected to the slash")
            status, _, _ = rae.call("POST", "/v2/memories/", body=b'{"content": "remember me"}')
            self.assertEqual(status, 200, "a memory is written with no key")
            listed = json.loads(rae.call("GET", "/v2/memories/")[1])
            self.assertEqual([m["content"] for m in listed["memories"]], ["remember me"], "and kept while it runs")
            status, stderr = rae.restart()
            self.assertEqual(status, 0, f"it restarts: {stderr}")
            wait_listening(rae.port, "rae after the restart")
            listed = json.loads(rae.call("GET", "/v2/memories/")[1])
            self.assertEqual(listed["memories"], [], "lite mode forgets every memory on restart")
        finally:
            rae.close()


class JelmoreFacts(unittest.TestCase):
    def setUp(self):
        self.jelmore = Fixture("jelmore", {".env": f"API_KEY_ADMIN={KEY}\nAPI_KEY_HEADER=X-API-Key\nPOSTGRES_PASSWORD=x\n"})

    def tearDown(self):
        self.jelmore.close()

    def test_answers_and_the_literal_header_name_key(self):
        path = "/api/v1/v1/sessions"
        status, body, headers = self.jelmore.call("GET", path)
        self.assertEqual((status, body), (401, '{"detail":"API key required"}'))
        self.assertEqual(headers.get("www-authenticate"), 'APIKey realm="X-API-Key"')
        self.assertEqual(self.jelmore.call("GET", path, {"X-API-Key": "wrong_key_123456"})[:2], (401, '{"detail":"Invalid API key"}'))
        self.assertEqual(self.jelmore.call("GET", path, {"X-API-Key": KEY})[0], 200)
        self.assertEqual(self.jelmore.call("GET", path, {"X-API-Key": "X-API-Key"})[0], 200, "API_KEY_HEADER makes its value a key")
        self.assertEqual(self.jelmore.call("GET", path, {"Authorization": "Bearer " + KEY})[0], 401, "Bearer is refused")

    def test_logs_key_prefix_and_the_uvicorn_access_line(self):
        self.jelmore.call("GET", "/api/v1/v1/sessions", {"X-API-Key": "wrong_key_123456", "X-Forwarded-For": "203.0.113.9"})
        self.jelmore.call("GET", "/api/v1/v1/sessions", {"X-API-Key": "short"})
        events = [json.loads(line) for line in self.jelmore.log_lines()]
        invalid = [e for e in events if e["event"] == "Invalid API key"]
        self.assertEqual(invalid[0]["key_prefix"], "wrong_key_", "first 10 characters")
        self.assertEqual(invalid[0]["client"], "203.0.113.9", "client is the first X-Forwarded-For entry")
        self.assertEqual(invalid[1]["key_prefix"], "short_key", "10 or fewer: short_key")
        with open(self.jelmore.access, encoding="utf-8") as f:
            access = f.read().splitlines()
        self.assertRegex(access[-1], r'^INFO:     127\.0\.0\.1:\d+ - "GET /api/v1/v1/sessions HTTP/1\.1" 401 Unauthorized$')


class JelmoreStream(unittest.TestCase):
    def setUp(self):
        self.jelmore = Fixture("jelmore", {".env": f"API_KEY_ADMIN={KEY}\nPOSTGRES_PASSWORD=x\n"}, access_log=False)

    def tearDown(self):
        self.jelmore.close()

    def test_one_failure_writes_two_lines_with_one_id_and_uvicorn_lines_share_the_stream(self):
        self.jelmore.call("GET", "/api/v1/v1/sessions", {"X-API-Key": "wrong_key_123456", "X-Correlation-ID": "probe-123"})
        raw = self.jelmore.log_lines()
        self.assertTrue(raw[0].startswith("INFO:     Started server process"), "uvicorn's start lines are in the stream")
        access = [line for line in raw if line.startswith("INFO:") and " - \"" in line]
        self.assertEqual(len(access), 1, "the access line is in the same stream")
        self.assertRegex(access[0], r'^INFO:     127\.0\.0\.1:\d+ - "GET /api/v1/v1/sessions HTTP/1\.1" 401 Unauthorized$')
        events = [json.loads(line) for line in raw if line.startswith("{")]
        failed = [e for e in events if e.get("request_id") == "probe-123"]
        self.assertEqual([e["event"] for e in failed], ["Request started", "Invalid API key", "Request completed"],
                         "the failure and its completion share the request id, taken from X-Correlation-ID")
        self.assertEqual(failed[-1]["status_code"], 401, "Request completed says 401 too")

    def test_cors_echoes_any_origin_with_credentials_and_metrics_is_503(self):
        status, _, headers = self.jelmore.call("GET", "/health", {"Origin": "https://evil.example"})
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("Access-Control-Allow-Origin"), "https://evil.example", "the origin is echoed")
        self.assertEqual(headers.get("Access-Control-Allow-Credentials"), "true", "with credentials")
        status, _, headers = self.jelmore.call("OPTIONS", "/api/v1/v1/sessions", {"Origin": "https://evil.example",
                                                                                  "Access-Control-Request-Method": "GET"})
        self.assertEqual((status, headers.get("Access-Control-Allow-Origin")), (200, "https://evil.example"), "preflight too")
        self.assertEqual(self.jelmore.call("GET", "/metrics")[0], 503, "Jelmore's /metrics answers 503")


if __name__ == "__main__":
    unittest.main()
