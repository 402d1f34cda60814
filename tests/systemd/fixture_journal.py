#!/usr/bin/env python3
"""demo/fixture_service.py with its log on standard output, as the real services log under
systemd (StandardOutput=journal): `--log` is not given; every other argument is passed on.

    fixture_journal.py --profile sekha --port 8080 --workdir /opt/sekha
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_service  # noqa: E402  (beside this file in the test's container)


class StdoutLog(fixture_service.Log):
    def __init__(self, path):
        # Line-buffered, so each line reaches the journal as it is written.
        self.file = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")


fixture_service.Log = StdoutLog
sys.argv += ["--log", "-"]
fixture_service.main()
