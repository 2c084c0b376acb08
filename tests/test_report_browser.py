"""The report as a person sees it: the tiny run's report.html and a showcase page opened in
headless Chromium, the methods table read off the page and the players loaded.

Chromium is Debian's ``chromium`` package. Where it is not on PATH, the ``chromium`` fixture
installs it with apt-get when the tests run as root, and otherwise skips these tests with the
reason. The browser is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``), with the standard library only.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from conftest import REPO, TINY_CONFIG, run_snakemake

pytestmark = pytest.mark.workflow

# The configuration of the tiny run: config/config.yaml under tests/config/tiny.yaml.
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
update_config(CONFIG, yaml.safe_load(TINY_CONFIG.read_text()))
METHODS = CONFIG["evaluation"]["methods"]
# The report shows an HTML item in a frame whose URL is the item as a data: URI, and Chromium
# blocks a frame's navigation to a URL longer than this (url::kMaxURLChars).
MAX_URL_CHARS = 2 * 1024 * 1024

# JavaScript run in the page. In Snakemake 9's report a menu entry is a link around its label,
# and a result is a table row of its labels (or path) and its buttons, links with an iconname.
CLICK_LINK = """(label) => {
    const link = [...document.querySelectorAll('a')].find(a => a.textContent.trim() === label);
    if (link) link.click();
    return Boolean(link);
}"""
CLICK_RESULT_BUTTON = """(label, icon) => {
    const row = [...document.querySelectorAll('tr')].find(r => r.cells[0]?.textContent.trim() === label);
    const button = row?.querySelector(`a[iconname="${icon}"]`);
    if (button) button.click();
    return Boolean(button);
}"""
TABLES = """() => [...document.querySelectorAll('table')].map(
    table => [...table.rows].map(row => [...row.cells].map(cell => cell.textContent.trim())))"""
LOADED = """() => new Promise(done => document.readyState === 'complete' ? done(true)
                                : addEventListener('load', () => done(true)))"""
LOAD_PLAYERS = """(seconds) => Promise.all([...document.querySelectorAll('audio')].map((audio, i) =>
    new Promise(done => {
        const name = `${i}: ${audio.closest('figure')?.querySelector('figcaption')?.textContent}`;
        const report = () => done({
            name,
            duration: Number.isFinite(audio.duration) ? audio.duration : String(audio.duration),
            error: audio.error && (audio.error.message || `MediaError ${audio.error.code}`),
        });
        audio.addEventListener('loadedmetadata', report, {once: true});
        audio.addEventListener('error', report, {once: true});
        setTimeout(report, seconds * 1000);
        // The players have preload='none': load the metadata as a click on play would.
        audio.preload = 'metadata';
        audio.load();
    })))"""


def _above_4(fd: int) -> int:
    """``fd`` moved above 4, so that putting one pipe end on fd 3 or 4 cannot overwrite the other."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
    os.close(fd)
    return moved


class Chromium:
    """Headless Chromium over the DevTools protocol. With --remote-debugging-pipe it reads
    commands on its fd 3 and writes replies and events on its fd 4, each message a JSON
    object followed by a NUL byte."""

    def __init__(self, exe: str, profile: Path):
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()
        commands_r, replies_w = _above_4(commands_r), _above_4(replies_w)

        def onto_fds_3_and_4():  # in the child, before exec; dup2's copies are inherited
            os.dup2(commands_r, 3)
            os.dup2(replies_w, 4)

        args = ["--headless", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio", "--no-first-run",
                "--remote-debugging-pipe", f"--user-data-dir={profile / 'profile'}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium's sandbox does not run as root
        self.log = profile / "chromium.log"
        with self.log.open("wb") as log:
            # close_fds would close fds 3 and 4 after preexec_fn; without it the child still
            # gets only inheritable fds, which Python's own are not (PEP 446).
            self._proc = subprocess.Popen([exe, *args, "about:blank"], preexec_fn=onto_fds_3_and_4, close_fds=False,
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        for fd in (commands_r, replies_w):
            os.close(fd)
        self._buffer = b""
        self._last_id = 0

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def command(self, method: str, *, session: str | None = None, timeout: float = 30.0, **params) -> dict:
        """Send one DevTools command (to the tab of ``session``) and wait for its result."""
        self._last_id += 1
        message = {"id": self._last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._commands, data):]
        deadline = time.monotonic() + timeout
        while True:
            *messages, self._buffer = self._buffer.split(b"\0")
            for raw in messages:  # the reply, and events, which these tests do not need
                reply = json.loads(raw)
                if reply.get("id") == self._last_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                    return reply["result"]
            if not select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError(f"Chromium did not answer {method} in {timeout:g} s; its log:\n{self.log_tail()}")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited during {method}; its log:\n{self.log_tail()}")
            self._buffer += chunk

    def open(self, url: str) -> "Tab":
        """A new tab with ``url`` loaded."""
        target = self.command("Target.createTarget", url="about:blank")["targetId"]
        tab = Tab(self, self.command("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
        tab.command("Page.enable")
        result = tab.command("Page.navigate", url=url)
        if result.get("errorText"):
            raise AssertionError(f"Chromium could not open {url}: {result['errorText']}")
        tab.evaluate(LOADED)
        return tab

    def close(self):
        try:
            self.command("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass  # it may exit before it answers
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._commands)
        os.close(self._replies)


class Tab:
    """One tab of :class:`Chromium`: its DevTools session."""

    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session

    def command(self, method: str, *, timeout: float = 30.0, **params) -> dict:
        return self.browser.command(method, session=self.session, timeout=timeout, **params)

    def evaluate(self, function: str, *args, context: int | None = None, timeout: float = 30.0):
        """The value (as JSON) of the JavaScript ``function`` called with ``args``, awaited,
        in the page or in the execution context ``context``."""
        params = {"expression": f"({function})(...{json.dumps(args)})", "awaitPromise": True, "returnByValue": True}
        if context is not None:
            params["contextId"] = context
        result = self.command("Runtime.evaluate", timeout=timeout, **params)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise AssertionError(details.get("exception", {}).get("description", details["text"]))
        return result["result"].get("value")

    def frames(self) -> list[dict]:
        """The page's frames (DevTools' Page.Frame: id, url, urlFragment...)."""
        return [child["frame"] for child in self.command("Page.getFrameTree")["frameTree"].get("childFrames", [])]

    def frame_context(self, frame_id: str) -> int:
        """An execution context in the frame ``frame_id``, cross-origin as a data: URI is."""
        return self.command("Page.createIsolatedWorld", frameId=frame_id, worldName="avsep-test")["executionContextId"]


def _eventually(value, *, timeout: float = 10.0):
    """The first truthy result of ``value()``, polled for ``timeout`` seconds; its last result
    when none came (the report's app draws a view some time after a click)."""
    deadline = time.monotonic() + timeout
    while not (result := value()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


def _install_chromium() -> str:
    """Install Debian's chromium with apt-get; returns why it could not, or ''."""
    if not shutil.which("apt-get"):
        return "no chromium on PATH and no apt-get to install Debian's chromium package"
    if os.geteuid() != 0:
        return "no chromium on PATH; installing Debian's chromium package needs root (apt-get install chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    # Stale package lists are the usual reason an install fails: refresh them once.
    for cmd in (install, ["apt-get", "update", "-q"], install):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        except subprocess.TimeoutExpired:
            return f"{' '.join(cmd)} took over 600 s"
        if proc.returncode == 0 and cmd is install:
            return ""
    return f"{' '.join(install)} failed: {proc.stderr.strip()[-500:]}"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's executable, installed when it can be; these tests skip without it."""
    if not shutil.which("chromium"):
        reason = _install_chromium()
        if reason or not shutil.which("chromium"):
            pytest.skip(f"headless Chromium is not available: {reason or 'chromium is not on PATH after the install'}")
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    chrome = Chromium(chromium, tmp_path_factory.mktemp("chromium"))
    yield chrome
    chrome.close()


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory) -> Path:
    """The tiny run's self-contained report. It is written outside the run's results/, whose
    file list another test compares with a second run's."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    run_snakemake(tiny_run, "--report", str(path))
    return path


def _first_showcase(tiny_run) -> Path:
    pages = sorted((tiny_run / "results" / "report" / "showcase").glob("*.html"))
    assert len(pages) == min(CONFIG["report"]["showcase"], CONFIG["mixtures"]["count"])
    return pages[0]


def _method_columns(tables: list[list[list[str]]]) -> list[list[str]]:
    """The ``method`` column of each table that has one in its header row."""
    return [[row[head.index("method")] for row in rows if len(row) == len(head)]
            for head, *rows in (t for t in tables if t) if "method" in head]


def _assert_players_load(players: list[dict]):
    assert len(players) >= 3, players  # the mixture and its two true stems at least
    seconds = CONFIG["mixtures"]["seconds"]
    # AAC's encoder delay and its last frame (1024 samples, 64 ms at 16 kHz) add under 0.15 s.
    wrong = [p for p in players
             if p["error"] or not isinstance(p["duration"], (int, float)) or abs(p["duration"] - seconds) > 0.15]
    assert not wrong, f"players that do not load a {seconds:g} s track: {wrong}"


def test_showcase_page_scores_every_method_and_its_players_load(browser, tiny_run):
    tab = browser.open(_first_showcase(tiny_run).as_uri())
    columns = _method_columns(tab.evaluate(TABLES))
    assert len(columns) == 1 and sorted(set(columns[0])) == sorted(METHODS), columns
    _assert_players_load(tab.evaluate(LOAD_PLAYERS, 10))


def _result_labels(tab: Tab) -> list[str]:
    """The first cell of every row, past the header, of the tables on the page."""
    return [row[0] for table in tab.evaluate(TABLES) for row in table[1:] if row]


def test_report_lists_the_methods_table_and_every_showcase_page(browser, report, tiny_run):
    # The navigation the two tests below rely on, with what the report holds today.
    tab = browser.open(report.as_uri())
    assert _eventually(lambda: tab.evaluate(CLICK_LINK, "Evaluation")), "no Evaluation category in the menu"
    assert "results/eval/methods.tsv" in _eventually(lambda: _result_labels(tab))
    assert tab.evaluate(CLICK_LINK, "Results") and _eventually(lambda: tab.evaluate(CLICK_LINK, "Examples"))
    pages = sorted((tiny_run / "results" / "report" / "showcase").glob("*.html"))
    assert _eventually(lambda: _result_labels(tab)) == [p.stem for p in pages]


# The duets are separated by the methods that need neither their stems nor their labels.
DUET_METHODS = [m for m in METHODS if m != "irm" and not m.endswith("_truth")]


@pytest.mark.parametrize("item, methods", [("results/eval/methods.tsv", METHODS),
                                           ("results/eval/duet_methods.tsv", DUET_METHODS)])
def test_report_shows_the_methods_table_with_every_method(browser, report, item, methods):
    tab = browser.open(report.as_uri())
    assert _eventually(lambda: tab.evaluate(CLICK_LINK, "Evaluation")), "no Evaluation category in the menu"
    assert _eventually(lambda: tab.evaluate(CLICK_RESULT_BUTTON, item, "information-circle")), \
        f"no {item} in the Evaluation category"
    complete = _eventually(lambda: [c for c in _method_columns(tab.evaluate(TABLES)) if set(methods) <= set(c)],
                           timeout=2)
    assert complete, f"no table on the page lists every method {methods}: {_method_columns(tab.evaluate(TABLES))}"


def test_report_shows_a_showcase_page_whose_players_load(browser, report, tiny_run):
    page = _first_showcase(tiny_run)
    tab = browser.open(report.as_uri())
    assert _eventually(lambda: tab.evaluate(CLICK_LINK, "Examples")), "no Examples category in the menu"
    assert _eventually(lambda: tab.evaluate(CLICK_RESULT_BUTTON, page.stem, "eye")), \
        f"no {page.stem} among the report's examples"
    # A frame that Chromium blocked is left at about:blank#blocked.
    shown = _eventually(lambda: [f for f in tab.frames()
                                 if f["url"].startswith("data:") or f.get("urlFragment") == "#blocked"])
    assert shown, f"the report showed no frame for the page: {tab.frames()}"
    url_chars = tab.evaluate("() => document.querySelector('iframe').src.length")
    assert shown[0]["url"].startswith("data:text/html"), (
        f"Chromium did not show {page.stem}: {shown[0]['url']}{shown[0].get('urlFragment', '')} "
        f"(its data: URI is {url_chars} characters, Chromium's limit {MAX_URL_CHARS})")
    context = tab.frame_context(shown[0]["id"])
    tab.evaluate(LOADED, context=context)
    assert tab.evaluate("() => document.title", context=context) == page.stem
    _assert_players_load(tab.evaluate(LOAD_PLAYERS, 10, context=context))
