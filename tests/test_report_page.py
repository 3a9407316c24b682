"""``fsm-bot report``'s page in a real browser: Debian's headless Chromium, driven over its DevTools protocol
(on a pipe, so Chromium can run in a network namespace with only loopback), at a phone's 390x844 (device
scale 3) and at a desktop's 1280x800. The page fits the width, shows the result on the first screen, reads
at a legible size and asks for nothing but itself; the header's numbers are the session's own files'."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from fsm_bot.money import usd

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe"]
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}
DESKTOP = {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}

MEASURE = """(() => {
  const box = e => e.getBoundingClientRect();
  const strip = document.getElementById('result');
  const values = [...strip.querySelectorAll('.value')];
  return {
    viewportWidth: window.innerWidth, viewportHeight: window.innerHeight,
    scrollWidth: document.documentElement.scrollWidth,
    stripBottom: box(strip).bottom,
    valuesBottom: Math.max(...values.map(v => box(v).bottom)), values: values.length,
    valueFontPx: Math.min(...values.map(v => parseFloat(getComputedStyle(v).fontSize))),
    bodyFontPx: parseFloat(getComputedStyle(document.body).fontSize),
    cellFontPx: parseFloat(getComputedStyle(document.querySelector('.scroll td')).fontSize),
    tableScrolls: getComputedStyle(document.querySelector('.scroll')).overflowX,
    tableWidth: box(document.querySelector('.scroll table')).width,
    chartTop: box(document.querySelector('img')).top,
  };
})()"""


class Browser:
    """One headless Chromium, spoken to in CDP messages (JSON, NUL-terminated) on fds 3 and 4."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # out of the way of 3 and 4, which the shell's redirections below overwrite
        a, b = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        chrome = " ".join([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"])
        inner = f"exec {chrome} 3<&{a} 4>&{b} {a}<&- {b}>&-"
        self.isolated = os.geteuid() == 0 and subprocess.run(["unshare", "-n", "true"],
                                                             capture_output=True).returncode == 0
        argv = (["unshare", "-n", "bash", "-c", f"ip link set lo up 2>/dev/null; {inner}"] if self.isolated
                else ["bash", "-c", inner])
        self.proc = subprocess.Popen(argv, pass_fds=(a, b), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(a)
        os.close(b)
        self._id, self._buffer, self.events = 0, b"", []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_chrome], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._from_chrome, 1 << 20) if ready else b""
            if not chunk:
                raise TimeoutError("Chromium said nothing (or exited): " + self.stderr())
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, timeout: float = 30, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params} | ({"sessionId": session} if session else {})
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for i, e in enumerate(self.events):
            if e.get("method") == method and e.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            e = self._read(deadline)
            if e.get("method") == method and e.get("sessionId") == session:
                return e
            self.events.append(e)

    def stderr(self) -> str:
        self.close()
        return self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.stderr else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass

    def open(self, url: str, metrics: dict, screenshot: Path | None = None,
             measure: str = MEASURE) -> tuple[dict, list[str]]:
        """The page's measurements at one device size, and every URL it requested."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        s = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Network.enable", s)
        self.send("Page.enable", s)
        self.send("Emulation.setDeviceMetricsOverride", s, **metrics)
        self.events.clear()
        self.send("Page.navigate", s, url=url)
        self.wait_for("Page.loadEventFired", s)
        time.sleep(0.3)  # anything the page might still ask for after its load event
        self.send("Runtime.evaluate", s, expression="1")  # and collect the events that came meanwhile
        requested = [e["params"]["request"]["url"] for e in self.events
                     if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == s]
        found = self.send("Runtime.evaluate", s, expression=measure, returnByValue=True)["result"]["value"]
        if screenshot:
            import base64
            shot = self.send("Page.captureScreenshot", s, format="png", captureBeyondViewport=False)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        self.send("Target.closeTarget", targetId=target)
        return found, requested


def launch(tmp_path_factory) -> Browser:
    """A headless Chromium for a module's pages: skipped where Debian's chromium is missing, unless CI
    requires it (``FSM_BOT_REQUIRE_CHROMIUM``)."""
    if CHROMIUM is None:
        if os.environ.get("FSM_BOT_REQUIRE_CHROMIUM"):
            pytest.fail("FSM_BOT_REQUIRE_CHROMIUM is set and chromium is not on PATH")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    return Browser(tmp_path_factory.mktemp("profile"))


def fsm_bot(*argv: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "fsm-bot"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fsm_bot"]
    return subprocess.run(cmd + list(argv), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    d = tmp_path_factory.mktemp("page") / "state"
    started = fsm_bot("start", "--sim", "--state-dir", str(d))
    assert started.returncode == 0, started.stderr
    made = fsm_bot("report", "--state-dir", str(d))
    assert made.returncode == 0, made.stderr
    return d


@pytest.fixture(scope="module")
def backtest_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("backtest")
    ran = fsm_bot("backtest", "--from", "2024-03-13T00:00:00Z", "--to", "2024-03-14T00:00:00Z", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    return out / "report.html"


@pytest.fixture(scope="module")
def measured(session, backtest_page, tmp_path_factory):
    browser = launch(tmp_path_factory)
    shots = os.environ.get("FSM_BOT_SCREENSHOTS")
    pages = {"report": (session / "report" / "report.html").resolve().as_uri(), "backtest": backtest_page.resolve().as_uri()}
    try:
        return {(page, name): (url, *browser.open(url, metrics, Path(shots) / f"{page}-{name}.png" if shots else None))
                for page, url in pages.items() for name, metrics in (("phone", PHONE), ("desktop", DESKTOP))}
    finally:
        browser.close()


PAGES = [(page, device) for page in ("report", "backtest") for device in ("phone", "desktop")]


@pytest.mark.parametrize("page,device", PAGES)
def test_the_page_fits_the_width_and_shows_the_result_on_the_first_screen(measured, page, device):
    _, m, _ = measured[page, device]
    expected = PHONE if device == "phone" else DESKTOP
    assert m["viewportWidth"] == expected["width"], m  # on a phone only with the viewport meta
    assert m["scrollWidth"] <= m["viewportWidth"], m
    assert m["values"] >= 6 and m["valuesBottom"] < m["viewportHeight"] and m["stripBottom"] < m["viewportHeight"], m
    assert m["tableScrolls"] == "auto", m  # a table wider than a phone scrolls in its own box
    assert m["bodyFontPx"] >= 14 and m["cellFontPx"] >= 12 and m["valueFontPx"] >= 20, m


@pytest.mark.parametrize("page,device", PAGES)
def test_the_page_asks_for_nothing_but_itself(measured, page, device):
    url, _, requested = measured[page, device]
    assert requested and requested[0] == url
    assert [u for u in requested if u != url and not u.startswith("data:")] == []


def money(page: str, name: str) -> tuple[str, Decimal]:
    """The header figure ``name``: its text, and the exact amount it carries."""
    m = re.search(rf'<div class="figure" id="{name}">.*?<span class="value[^"]*"[^>]*data-exact="([^"]+)"[^>]*>([^<]+)<',
                  page, re.S)
    assert m, f"no header figure {name}"
    return m.group(2), Decimal(m.group(1))


def test_the_header_numbers_are_the_sessions_own_files(session):
    page = (session / "report" / "report.html").read_text()
    rows = [json.loads(line, parse_float=Decimal) for line in (session / "trades.jsonl").read_text().splitlines()]
    fixes = session / "corrections.jsonl"
    changes = [json.loads(line, parse_float=Decimal)["pnl_change"]
               for line in (fixes.read_text().splitlines() if fixes.exists() else [])]
    start = rows[0]["capital_after"] - rows[0]["pnl"]
    final = rows[-1]["capital_after"] + sum(changes, Decimal(0))
    pnl = sum((r["pnl"] for r in rows), Decimal(0)) + sum(changes, Decimal(0))
    fees = sum((r["fee"] for r in rows), Decimal(0))
    assert final - start == pnl
    for name, exact, shown in (("final", final, usd(final)), ("pnl", pnl, usd(pnl, sign=True)),
                               ("fees", fees, usd(fees)), ("gross", pnl + fees, usd(pnl + fees, sign=True))):
        assert money(page, name) == (shown, exact), name
    traded = [r for r in rows if r["outcome"] in ("WIN", "LOSS")]
    wins = sum(r["outcome"] == "WIN" for r in traded)
    assert f"{wins / len(traded):.1%}" in re.search(r'id="hit".*?</div>', page, re.S).group(0)
    assert f"{(final - start) / start:+.1%}" in re.search(r'id="final".*?</div>', page, re.S).group(0)
