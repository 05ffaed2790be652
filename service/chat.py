"""`retorno chat`: a respondent's conversation in the terminal, through the console channel's webhook."""

from __future__ import annotations

import getpass
import socket
import sys
import time
import uuid

import click
import requests

FIRST_REPLY_SECONDS = 8.0
QUIET_SECONDS = 0.6
POLL_SECONDS = 0.1


class Chat:
    def __init__(self, url: str, address: str, http: requests.Session | None = None):
        self.url = url.rstrip("/")
        self.address = address
        self.http = http or requests.Session()
        self.after = 0

    def catch_up(self) -> None:
        """Skip what was said before this chat started."""
        replies = self._replies()
        while replies:
            self.after = replies[-1]["id"]
            replies = self._replies()

    def say(self, text: str) -> list[str]:
        """Send one line; return the service's replies once they stop coming."""
        response = self.http.post(
            f"{self.url}/webhooks/console",
            json={"from": self.address, "text": text, "id": uuid.uuid4().hex},
            timeout=10,
        )
        if response.status_code >= 300:
            raise click.ClickException(f"the service refused the message ({response.status_code}): {response.text[:200]}")
        return self.wait()

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
        response = self.http.get(
            f"{self.url}/webhooks/console/replies", params={"address": self.address, "after": self.after}, timeout=10
        )
        if response.status_code == 404:
            raise click.ClickException("the console channel is off on that service (RETORNO_CONSOLE_CHANNEL=true)")
        response.raise_for_status()
        return response.json()


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
