"""A real headless Chromium (Debian's ``chromium``) driven over the Chrome DevTools Protocol.

No Selenium or Playwright: CDP is JSON over one websocket, which aiohttp's
client (already a dependency of the dashboard) speaks. ``launched()`` starts
the browser with a throwaway profile and port 0, reads the port it chose from
``DevToolsActivePort`` in the profile, attaches to its first page and yields a
:class:`Page`; on exit the browser is stopped and its profile removed. Used by
tests/web/test_browser.py and bench/web.py; import as ``from tests.web.chromium
import launched``.
"""

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

STARTUP_TIMEOUT = 30.0
# Keys as Input.dispatchKeyEvent wants them: key, code, Windows virtual key code.
KEYS = {
    "Enter": ("Enter", "Enter", 13, "\r"),
    "ArrowLeft": ("ArrowLeft", "ArrowLeft", 37, ""),
    "ArrowUp": ("ArrowUp", "ArrowUp", 38, ""),
    "ArrowRight": ("ArrowRight", "ArrowRight", 39, ""),
    "ArrowDown": ("ArrowDown", "ArrowDown", 40, ""),
    "+": ("+", "Equal", 187, "+"),
    "-": ("-", "Minus", 189, "-"),
}


class BrowserError(Exception):
    """The browser could not start, or a page's script threw."""


def chromium_binary() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium")


class Page:
    """One page target: commands with replies, events awaited by name."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            data = json.loads(message.data)
            if "id" in data:
                future = self._replies.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            for waiter in self._events.pop(data.get("method", ""), []):
                if not waiter.done():
                    waiter.set_result(data.get("params", {}))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one CDP command; its result, or BrowserError with the browser's message."""
        number = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._replies[number] = future
        await self.socket.send_str(json.dumps({"id": number, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def event(self, name: str) -> "asyncio.Future[dict[str, Any]]":
        """A future of the next event ``name`` (ask before causing it)."""
        future = asyncio.get_running_loop().create_future()
        self._events.setdefault(name, []).append(future)
        return future

    async def navigate(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        loaded = self.event("Page.loadEventFired")
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded, 30)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description", str(details)))
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"still false after {timeout:g} s: {expression}")
            await asyncio.sleep(0.05)

    async def screenshot(self, path: Path, height: int | None = None) -> Path:
        """Save a PNG of the whole page, or of its top ``height`` CSS pixels."""
        clip = {}
        if height is not None:
            width = await self.evaluate("document.documentElement.clientWidth")
            clip = {"clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}
        shot = await self.send(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True, **clip
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def centre(self, selector: str) -> tuple[float, float]:
        """The viewport coordinates of the centre of the first element matching ``selector``."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        return float(box[0]), float(box[1])

    async def mouse(self, kind: str, x: float, y: float, buttons: int = 0) -> None:
        await self.send(
            "Input.dispatchMouseEvent",
            type=kind,
            x=x,
            y=y,
            button="left" if kind != "mouseMoved" or buttons else "none",
            buttons=buttons,
            clickCount=1 if kind != "mouseMoved" else 0,
        )

    async def click(self, x: float, y: float) -> None:
        """A left click at (x, y)."""
        await self.mouse("mouseMoved", x, y)
        await self.mouse("mousePressed", x, y, 1)
        await self.mouse("mouseReleased", x, y)

    async def drag(self, x0: float, x1: float, y: float, steps: int = 8) -> None:
        """Press at (x0, y), move to (x1, y) in steps, release: a selection."""
        await self.mouse("mouseMoved", x0, y)
        await self.mouse("mousePressed", x0, y, 1)
        for i in range(1, steps + 1):
            await self.mouse("mouseMoved", x0 + (x1 - x0) * i / steps, y, 1)
        await self.mouse("mouseReleased", x1, y)

    async def key(self, name: str) -> None:
        """Press and release a key of KEYS."""
        key, code, number, text = KEYS[name]
        common = {"key": key, "code": code, "windowsVirtualKeyCode": number}
        await self.send("Input.dispatchKeyEvent", type="keyDown", text=text, **common)
        await self.send("Input.dispatchKeyEvent", type="keyUp", **common)

    async def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        """Emulate a screen of ``width`` x ``height`` CSS pixels (a phone with ``mobile``)."""
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=2 if mobile else 1,
            mobile=mobile,
        )

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.socket.close()


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process, log: Path) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    active = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise BrowserError(f"chromium exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(active.read_text().split()[0])
        await asyncio.sleep(0.05)
    raise BrowserError(f"chromium did not open DevTools within {STARTUP_TIMEOUT:g} s")


@contextlib.asynccontextmanager
async def launched(log_dir: Path, width: int = 1280, height: int = 900) -> AsyncIterator[Page]:
    """A headless Chromium with one page; stopped and its profile removed on exit."""
    binary = chromium_binary()
    if binary is None:
        raise BrowserError("chromium is not installed (scripts/install-debian-deps.sh)")
    profile = Path(tempfile.mkdtemp(prefix="web-chromium-"))
    log = log_dir / "chromium.log"
    arguments = [
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        *(["--no-sandbox"] if os.geteuid() == 0 else []),  # the sandbox refuses root
        "about:blank",
    ]
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            binary, *arguments, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output
        )
    try:
        port = await _devtools_port(profile, process, log)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            page = Page(await session.ws_connect(url, max_msg_size=0))
            try:
                await page.send("Page.enable")
                await page.viewport(width, height)
                yield page
            finally:
                await page.close()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(profile, ignore_errors=True)
