"""A headless Chromium driven over the DevTools protocol, for tests that check what the UIs show.

Chromium talks the protocol over a pipe (`--remote-debugging-pipe`: it reads commands on fd 3 and
writes replies on fd 4, each message JSON ending in a NUL byte), so no websocket library is
needed; the browser is Debian's `chromium` package, nothing is downloaded. Pages are waited for
by condition (their text), never by sleeping a fixed time.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def executable() -> str | None:
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


class Browser:
    def __init__(self, path: str, width: int = 1400, height: int = 1000) -> None:
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()

        def on_fds_3_and_4() -> None:  # in the child, before exec
            a = fcntl.fcntl(to_browser, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_browser, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.profile = tempfile.mkdtemp(prefix="werk-chromium-")
        self.proc = subprocess.Popen(
            [path, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            preexec_fn=on_fds_3_and_4, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, self.session)
        self.send("Page.enable", {}, self.session)

    def send(self, method: str, params: dict[str, Any], session: str | None = None, timeout: float = 60) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:  # events and other replies are not waited for
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raise TimeoutError(method)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                           self.session)
        if "exceptionDetails" in result:  # a broken script is the test's error, not an empty page
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')} "
                               f"{result['exceptionDetails'].get('exception', {}).get('description', '')}")
        return result.get("result", {}).get("value")

    def open(self, url: str, shows: tuple[str, ...], timeout: float = 90) -> str:
        """Load `url` and wait until the page's text holds every string in `shows`; returns the text."""
        self.send("Page.navigate", {"url": url}, self.session)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.evaluate("document.body ? document.body.innerText : ''") or ""
            if all(s in text for s in shows):
                return text
            time.sleep(0.25)  # polling a condition, bounded by the deadline
        missing = [s for s in shows if s not in text]
        raise AssertionError(f"{url} did not show {missing} within {timeout} s; it showed:\n{text[:3000]}")

    def links(self) -> list[str]:
        return self.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)") or []

    def images(self) -> list[dict[str, Any]]:
        """Every image on the page: its source and whether it loaded (a natural width above 0)."""
        return self.evaluate("Array.from(document.images).map(i => ({src: i.src, loaded: i.complete && i.naturalWidth > 0}))") or []

    def wait_for_images(self, src_part: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until `count` images whose source holds `src_part` have loaded, scrolling each into
        view (pages may load images lazily); returns them, loaded or not at the deadline."""
        script = (f"Array.from(document.images).filter(i => i.src.includes({json.dumps(src_part)}))"
                  ".map(i => { i.scrollIntoView(); return {src: i.src, loaded: i.complete && i.naturalWidth > 0}; })")
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            found = self.evaluate(script) or []
            if len(found) >= count and all(i["loaded"] for i in found):
                break
            time.sleep(0.25)  # polling a condition, bounded by the deadline
        return found

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"}, self.session)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", {}, timeout=10)
        except Exception:  # noqa: BLE001 - it may be gone already
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
