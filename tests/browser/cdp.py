#!/usr/bin/env python3
"""A small DevTools-protocol driver for headless Chromium, for the HTML report's tests.

Opens one URL in a fresh headless Chromium over --remote-debugging-pipe (file descriptors 3
and 4, messages separated by NUL bytes: no WebSocket, no port), with page scripts on or off,
and prints one JSON object on stdout:

  {"requests": [every URL the page asked for, in order],
   "failed": [URLs whose load failed],
   "dom": the rendered document's outerHTML,
   "eval": the value of --eval's expression (scripts on only)}

--screenshot saves a PNG of the whole page. The network is off for the page: Chromium gets a
proxy that does not exist and a resolver that resolves nothing, so only loopback (the live
page) and file:// URLs can load, and any other request shows up in "requests" and "failed".
Python's standard library only.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    # Network off: everything but loopback goes to a proxy that is not there.
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--remote-debugging-pipe",
]


class Browser:
    def __init__(self, chromium, profile):
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def pipes():
            # Out of the way first: either end may itself be fd 3 or 4, and dup2 onto the same
            # number would leave it close-on-exec.
            r = os.dup2(to_browser_r, 100, inheritable=False)
            w = os.dup2(from_browser_w, 101, inheritable=False)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [chromium, *FLAGS, "--user-data-dir=" + profile, "about:blank"],
            preexec_fn=pipes,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("CDP_DEBUG") else subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.next_id = 0
        self.buffer = b""
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        want = self.next_id
        while True:
            m = self.read()
            if m.get("id") == want:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def read(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed the pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def wait_for(self, method, session):
        for i, m in enumerate(self.events):
            if m.get("method") == method and m.get("sessionId") == session:
                del self.events[: i + 1]
                return m
        while True:
            m = self.read()
            if m.get("method") == method and m.get("sessionId") == session:
                return m
            self.events.append(m)

    def close(self):
        try:
            self.send("Browser.close")
        except RuntimeError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def screenshot(browser, session, clip, path):
    shot = browser.send(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": {**clip, "scale": 1}},
        session=session,
    )
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--no-js", action="store_true", help="page scripts off")
    ap.add_argument("--screenshot", help="PNG of the whole page")
    ap.add_argument("--eval", help="an expression to evaluate once loaded (scripts on)")
    ap.add_argument(
        "--section",
        action="append",
        default=[],
        metavar="SELECTOR=PNG",
        help="a PNG of the element SELECTOR picks (repeatable)",
    )
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    signal.alarm(90)

    profile = tempfile.mkdtemp(prefix="mailtap-chromium-")
    browser = Browser(args.chromium, profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        browser.send("Network.enable", session=session)
        browser.send("Page.enable", session=session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": args.width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        if args.no_js:
            browser.send("Emulation.setScriptExecutionDisabled", {"value": True}, session=session)
        browser.send("Page.navigate", {"url": args.url}, session=session)
        browser.wait_for("Page.loadEventFired", session)

        result = {"requests": [], "failed": [], "eval": None}
        ids = {}
        for m in browser.events:
            if m.get("sessionId") != session:
                continue
            p = m.get("params", {})
            if m.get("method") == "Network.requestWillBeSent":
                result["requests"].append(p["request"]["url"])
                ids[p["requestId"]] = p["request"]["url"]
            elif m.get("method") == "Network.loadingFailed":
                result["failed"].append(ids.get(p.get("requestId"), p.get("requestId")))

        if args.eval and not args.no_js:
            r = browser.send(
                "Runtime.evaluate",
                {"expression": args.eval, "returnByValue": True},
                session=session,
            )
            result["eval"] = r.get("result", {}).get("value")

        root = browser.send("DOM.getDocument", {"depth": 0}, session=session)["root"]
        result["dom"] = browser.send(
            "DOM.getOuterHTML", {"nodeId": root["nodeId"]}, session=session
        )["outerHTML"]

        if args.screenshot:
            size = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"]}
            screenshot(browser, session, clip, args.screenshot)
        for spec in args.section:
            selector, path = spec.rsplit("=", 1)
            node = browser.send(
                "DOM.querySelector", {"nodeId": root["nodeId"], "selector": selector}, session
            )["nodeId"]
            quad = browser.send("DOM.getBoxModel", {"nodeId": node}, session)["model"]["border"]
            xs, ys = quad[0::2], quad[1::2]
            clip = {"x": min(xs), "y": min(ys), "width": max(xs) - min(xs), "height": max(ys) - min(ys)}
            screenshot(browser, session, clip, path)
        json.dump(result, sys.stdout)
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
