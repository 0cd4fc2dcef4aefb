#!/usr/bin/python3
"""Drives headless Debian chromium over a `ddps report` (test_report).

usage: report_browser.py REPORT_DIR SCREENSHOT.png [CLASS_PAGE_FOR_SCREENSHOT]

Talks the DevTools protocol over --remote-debugging-pipe (fds 3 and 4,
NUL-terminated JSON), so it needs nothing but python3 and chromium. From
index.html it visits every class page it links to and checks on each page:
no console error, no uncaught exception, no failed resource load; every
<img> loaded (naturalWidth > 0, lazy images forced to load); every link
resolves (relative files exist, #anchors exist on their page, file:// links
to source images exist, and one source image opens in the browser). Saves a
screenshot of a class page. Exit 0 pass, 1 failure (reasons on stderr), 77
when chromium is not installed.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

TIMEOUT = 120.0


class Browser:
    def __init__(self):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            print("chromium not installed: skipped", file=sys.stderr)
            sys.exit(77)
        self.profile = tempfile.mkdtemp(prefix="ddps-chromium-")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # the child reads commands on fd 3 and writes replies on fd 4
        def setup():
            # via high numbers, in case a pipe end already is fd 3 or 4
            a, b = os.dup2(to_child_r, 100), os.dup2(from_child_w, 101)
            os.dup2(a, 3)
            os.dup2(b, 4)
        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--user-data-dir=" + self.profile, "about:blank"]
        self.log = open(os.path.join(self.profile, "chromium.log"), "w+")
        self.proc = subprocess.Popen(args, preexec_fn=setup, pass_fds=(3, 4),
                                     stdout=self.log, stderr=self.log)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def log_tail(self):
        self.log.flush()
        self.log.seek(0)
        return "".join(self.log.readlines()[-15:])

    def close(self):
        try:
            self.send("Browser.close", session=False, wait=False)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe (exit %s); its output:\n%s" % (self.proc.poll(), self.log_tail()))
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=True, wait=True):
        self.next_id += 1
        m = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            m["sessionId"] = self.session
        os.write(self.to_child, json.dumps(m).encode() + b"\0")
        if not wait:
            return None
        deadline = time.time() + TIMEOUT
        while True:
            r = self._read_message(deadline)
            if r.get("id") == self.next_id:
                if "error" in r:
                    raise RuntimeError("%s: %s" % (method, r["error"]))
                return r.get("result", {})
            if "method" in r:
                self.events.append(r)

    def wait_event(self, name, deadline):
        while True:
            for i, e in enumerate(self.events):
                if e["method"] == name:
                    del self.events[i]
                    return e
            self.events.append(self._read_message(deadline))

    def open_page(self):
        t = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        a = self.send("Target.attachToTarget", {"targetId": t["targetId"], "flatten": True}, session=False)
        self.session = a["sessionId"]
        for m in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(m)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1100, "height": 800, "deviceScaleFactor": 1, "mobile": False})

    def goto(self, url):
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", time.time() + TIMEOUT)

    def eval(self, expr):
        r = self.send("Runtime.evaluate", {"expression": expr, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError("evaluate: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def errors(self):
        """Console errors, exceptions and failed loads seen since the last call."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append("exception: %s" % p.get("exceptionDetails", {}).get("text"))
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.%s: %s" % (p["type"], [a.get("value") for a in p.get("args", [])]))
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: %s %s" % (p["entry"].get("text"), p["entry"].get("url", "")))
        self.events = [e for e in self.events if e["method"] == "Page.loadEventFired"]
        return out


# Forces lazy images to load, waits for all, reports those that did not load.
LOAD_IMAGES = """(async () => {
  const imgs = [...document.images];
  for (const i of imgs) i.loading = 'eager';
  await Promise.all(imgs.map(i => i.complete ? (i.decode ? i.decode().catch(() => 0) : 0)
      : new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
  return {n: imgs.length, bad: imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.src)};
})()"""

LINKS = "[...document.querySelectorAll('a[href]')].map(a => a.href)"
IDS = "[...document.querySelectorAll('[id]')].map(e => e.id)"


def file_path(url):
    u = urllib.parse.urlsplit(url)
    return urllib.parse.unquote(u.path), u.fragment


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    report = os.path.realpath(sys.argv[1])
    shot = sys.argv[2]
    shot_page = sys.argv[3] if len(sys.argv) > 3 else "c1/index.html"
    failures = []
    b = Browser()
    try:
        b.open_page()
        index = "file://" + urllib.parse.quote(os.path.join(report, "index.html"))
        pages, seen, sources, checked = [index], set(), [], 0
        while pages:
            url = pages.pop(0)
            if url in seen:
                continue
            seen.add(url)
            b.goto(url)
            imgs = b.eval(LOAD_IMAGES)
            links = b.eval(LINKS)
            ids = set(b.eval(IDS))
            for e in b.errors():
                failures.append("%s: %s" % (url, e))
            for s in imgs["bad"]:
                failures.append("%s: image did not load: %s" % (url, s))
            checked += imgs["n"]
            here, _ = file_path(url)
            for link in links:
                path, frag = file_path(link)
                if not link.startswith("file://"):
                    failures.append("%s: link leaves file:// : %s" % (url, link))
                    continue
                if path == here:
                    if frag and frag not in ids:
                        failures.append("%s: anchor #%s not on the page" % (url, frag))
                    continue
                if not os.path.exists(path):
                    failures.append("%s: link to a missing file: %s" % (url, path))
                    continue
                if path.startswith(report + "/") and path.endswith(".html"):
                    pages.append(link.split("#")[0])
                elif not path.startswith(report + "/"):
                    sources.append(link)
            print("%s: %d images, %d links" % (url[len("file://"):], imgs["n"], len(links)))
        class_pages = [p for p in seen if p != index]
        if not class_pages:
            failures.append("index.html links to no class page")
        if not sources:
            failures.append("no links to source images")
        else:
            # a source image opens in the browser
            b.goto(sources[0])
            img = b.eval(LOAD_IMAGES)
            if img["n"] != 1 or img["bad"]:
                failures.append("source image %s did not open: %s" % (sources[0], img))
            for e in b.errors():
                failures.append("%s: %s" % (sources[0], e))
        # the screenshot of a class page (full width, top of the page)
        b.goto("file://" + urllib.parse.quote(os.path.join(report, shot_page)))
        b.eval(LOAD_IMAGES)
        h = b.eval("Math.min(document.documentElement.scrollHeight, 1400)")
        r = b.send("Page.captureScreenshot",
                   {"format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": 1100, "height": h, "scale": 1}})
        with open(shot, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        print("%d pages, %d images, %d source links; screenshot %s" % (len(seen), checked, len(sources), shot))
    finally:
        b.close()
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
