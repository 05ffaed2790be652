"""README's quick start as data, and a driver that follows it word for word in two terminals (bash sessions).

`steps(readme)` reads the `console` blocks of the "Quick start" section: `$ command` lines and the lines they
print. `python -m tests.quickstart FOLDER PLAN.json` runs the plan in FOLDER and prints what each command printed,
as JSON: the first terminal runs in the background (`retorno run` never ends), the second one once the service
answers. The test runs it in a private network namespace, so the README's port 8000 is free whatever else runs on
the machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

MARK = "@@quickstart@@"
HEALTH = "http://127.0.0.1:8000/healthz"


@dataclass
class Step:
    command: str
    shows: list[str] = field(default_factory=list)


def section(readme: str, title: str = "Quick start") -> str:
    start = readme.index(f"## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start:end if end != -1 else None]


def terminals(readme: str) -> list[list[Step]]:
    """The quick start's console blocks as terminals: the first block is the first terminal, the rest the second."""
    blocks = re.findall(r"```console\n(.*?)```", section(readme), re.DOTALL)
    parsed = []
    for block in blocks:
        steps: list[Step] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            elif steps and line.strip():
                steps[-1].shows.append(line)
        parsed.append(steps)
    return [parsed[0], [step for block in parsed[1:] for step in block]]


def shown(expected: list[str], printed: str) -> list[str]:
    """The expected lines not found, in order, among the printed ones ('...' stands for anything)."""
    lines = printed.splitlines()
    missing = []
    position = 0
    for line in expected:
        if line.strip() == "...":
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in line.split("...")))
        found = next((i for i in range(position, len(lines)) if pattern.fullmatch(lines[i])), None)
        if found is None:
            missing.append(line)
        else:
            position = found + 1
    return missing


def _script(commands: list[str]) -> str:
    """The commands as typed, each followed by a marker line with its exit status."""
    return "".join(f"{command}\necho \"{MARK} $?\"\n" for command in commands)


def _split(output: str, count: int) -> list[dict[str, object]]:
    results = []
    rest = output
    for _ in range(count):
        before, marker, rest = rest.partition(MARK)
        if not marker:
            results.append({"printed": before, "status": None})
            rest = ""
            continue
        status, _, rest = rest.partition("\n")
        results.append({"printed": before, "status": int(status.strip() or -1)})
    return results


def _wait_for_service(server: subprocess.Popen, seconds: float = 90) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(HEALTH, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def follow(folder: str, first: list[str], second: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run the first terminal in the background and the second once the service answers; what each printed."""
    server = subprocess.Popen(["bash", "-c", _script(first)], cwd=folder, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        up = _wait_for_service(server)
        second_output = ""
        if up:
            second_output = subprocess.run(["bash", "-c", _script(second)], cwd=folder, env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                           timeout=600).stdout
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)  # Ctrl-C
        try:
            first_output = server.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            first_output = server.communicate()[0]
    return {"up": up, "first": _split(first_output, len(first)), "second": _split(second_output, len(second))}


def main() -> None:
    folder, plan_file = sys.argv[1], sys.argv[2]
    with open(plan_file, encoding="utf-8") as handle:
        plan = json.load(handle)
    if plan.get("loopback_up"):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    print(json.dumps(follow(folder, plan["first"], plan["second"], plan["env"])))


if __name__ == "__main__":
    main()

