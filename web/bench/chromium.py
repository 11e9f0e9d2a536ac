"""Run the SFrame benchmark (web/bench/core.ts) in headless Chromium and print its table.

Usage (after ``npm ci && node build.mjs --bench`` in web/):
    python web/bench/chromium.py [--chromium /usr/bin/chromium] [--json out.json]

Debian's ``chromium`` is driven by Playwright from PyPI (``executable_path``; no browser download).
The page is served on 127.0.0.1 (a secure context, as WebCrypto needs); figures are reported, not
asserted. The page's main thread is timed in batches (as in Node).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import threading
from pathlib import Path

WEB = Path(__file__).resolve().parents[1]
PAGE = b"""<!doctype html><meta charset="utf-8"><title>orange-fast SFrame bench</title>
<script type="module" src="/bench/browser.js"></script>"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    root = WEB / "dist-test"
    if not (root / "bench" / "browser.js").exists():
        raise SystemExit("build first: (cd web && npm ci && node build.mjs --bench)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            page.wait_for_function("globalThis.benchResult !== undefined", timeout=30_000)
            result = page.evaluate("globalThis.benchResult", None)
            browser.close()
    finally:
        server.shutdown()
    if "error" in result:
        raise SystemExit(f"benchmark failed in the page: {result['error']}")
    print(result["table"])
    print(result["runtime"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
