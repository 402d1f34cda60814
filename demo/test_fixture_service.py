"""The fixture services must behave as shared/service-facts.md says the real ones do: the
demo fleet and the tests built on it are only as honest as these stand-ins.

    python3 -m unittest demo/test_fixture_service.py
"""

import json
import os
import socket
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


class Fixture:
    def __init__(self, profile, files, extra=()):
        self.dir = tempfile.TemporaryDirectory()
        for name, text in files.items():
            with open(os.path.join(self.dir.name, name), "w", encoding="utf-8") as f:
                f.write(text)
        self.port = free_port()
        self.log = os.path.join(self.dir.name, "service.log")
        self.access = os.path.join(self.dir.name, "access.log")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fixture_service.py"), "--profile", profile, "--port", str(self.port),
             "--workdir", self.dir.name, "--log", self.log, "--access-log", self.access, *extra],
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{profile} fixture did not start")

    def call(self, method, path, headers=None, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method, data=body)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=3) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)

    def log_lines(self):
        with open(self.log, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)
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
        lines = [json.loads(line) for line in self.rae.log_lines()]
        self.assertEqual(lines[0]["event"], "security_settings")
        self.assertEqual([line["event"] for line in lines[-2:]], ["invalid_api_key", "authentication_required_no_credentials"])
        self.assertEqual(lines[-2]["provided_key"], "***", "keys are masked")
        self.assertTrue(lines[-1]["timestamp"].endswith("Z"))


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


if __name__ == "__main__":
    unittest.main()
