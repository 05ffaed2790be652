"""`retorno chat`: a respondent's conversation in the terminal, through the console channel's webhook.

The console answers this machine only. The first message as an address answers a reader secret: only its holder
reads that address's replies or writes as it again. It is kept (0600) in $XDG_STATE_HOME/retorno/chat.json, so
`--as NAME` resumes a conversation.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import click
import requests

FIRST_REPLY_SECONDS = 8.0
QUIET_SECONDS = 0.6
POLL_SECONDS = 0.1


READER_HEADER = "X-Console-Reader"


def _state_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "retorno" / "chat.json"


class Readers:
    """The reader secrets this user holds, by service URL and address (a 0600 file; in memory if it cannot be)."""

    def __init__(self, path: Path | None = None):
        self.path = path or _state_file()
        try:
            self.known: dict[str, str] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.known = {}

    def get(self, url: str, address: str) -> str | None:
        return self.known.get(f"{url} {address}")

    def put(self, url: str, address: str, reader: str | None) -> None:
        """Keep `reader` for this address (None: forget it)."""
        if self.known.get(f"{url} {address}") == reader:
            return
        if reader is None:
            self.known.pop(f"{url} {address}", None)
        else:
            self.known[f"{url} {address}"] = reader
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(self.known, handle)
        except OSError:
            pass  # kept for this chat only

    def forget(self, url: str, address: str) -> None:
        self.put(url, address, None)


class Chat:
    def __init__(self, url: str, address: str, http: requests.Session | None = None, readers: Readers | None = None):
        self.url = url.rstrip("/")
        self.address = address
        self.http = http or requests.Session()
        self.after = 0
        self.readers = readers or Readers()
        self.reader = self.readers.get(self.url, address)

    def catch_up(self) -> None:
        """Skip what was said before this chat started (nothing to skip for an address new to this user)."""
        if self.reader is None:
            self._reachable()
            return
        response = self._get_replies()
        if response.status_code == 403:  # a secret of an earlier database (retorno-data was reset): start anew
            self.reader = None
            self.readers.forget(self.url, self.address)
            return
        replies = self._replies()
        while replies:
            self.after = replies[-1]["id"]
            replies = self._replies()

    def say(self, text: str) -> list[str]:
        """Send one line; return the service's replies once they stop coming."""
        response = self.http.post(
            f"{self.url}/webhooks/console",
            json={"from": self.address, "text": text, "id": uuid.uuid4().hex},
            headers={READER_HEADER: self.reader} if self.reader else {},
            timeout=10,
        )
        if response.status_code >= 300:
            raise click.ClickException(f"the service refused the message ({response.status_code}): "
                                       f"{_error_message(response)}")
        reader = (response.json() or {}).get("reader")
        if reader and reader != self.reader:
            self.reader = reader
            self.readers.put(self.url, self.address, reader)
        return self.wait()

    def _get_replies(self) -> requests.Response:
        return self.http.get(f"{self.url}/webhooks/console/replies", params={"after": self.after},
                             headers={READER_HEADER: self.reader or ""}, timeout=10)

    def _reachable(self) -> None:
        response = self.http.get(f"{self.url}/healthz", timeout=10)
        if response.status_code == 404:
            raise click.ClickException(f"{self.url} is not a Retorno service")

    def wait(self) -> list[str]:
        texts: list[str] = []
        started = last = time.monotonic()
        while True:
            replies = self._replies()
            now = time.monotonic()
            if replies:
                texts.extend(r["text"] for r in replies if r["text"])
                self.after = replies[-1]["id"]
                last = now
            elif texts and now - last >= QUIET_SECONDS:
                return texts
            elif not texts and now - started >= FIRST_REPLY_SECONDS:
                return texts
            time.sleep(POLL_SECONDS)

    def _replies(self) -> list[dict]:
        if self.reader is None:
            return []
        response = self._get_replies()
        if response.status_code == 404:
            raise click.ClickException("the console channel is off on that service (RETORNO_CONSOLE_CHANNEL=true)")
        if response.status_code == 403:
            raise click.ClickException(f"the service refused to show the replies: {_error_message(response)}")
        response.raise_for_status()
        return response.json()


def _error_message(response: requests.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def default_address() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001
        user = "someone"
    return f"{user}@{socket.gethostname()}"


def run_chat(url: str, address: str | None) -> int:
    chat = Chat(url, address or default_address())
    interactive = sys.stdin.isatty()
    try:
        chat.catch_up()
    except requests.RequestException:
        click.echo(f"Cannot reach Retorno at {url}. Is `retorno run` running?", err=True)
        return 1
    if interactive:
        click.echo(f"Chatting with {url} as {chat.address}. Say hola to start; Ctrl-D leaves.", err=True)
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            return 0
        except KeyboardInterrupt:
            click.echo("", err=True)
            return 0
        if not line.strip():
            continue
        if not interactive:
            click.echo(f"> {line}")
        try:
            replies = chat.say(line)
        except requests.RequestException as error:
            click.echo(f"Lost the service at {url}: {type(error).__name__}", err=True)
            return 1
        for text in replies:
            click.echo(text)
            click.echo("")
        if not replies:
            click.echo("(no reply)", err=True)
