"""README's quick start, followed word for word on a fresh copy of the repository: a new virtualenv, `pip install
-e .`, `retorno run` in one terminal, and in another a chat, a survey check, a contact import and a campaign up to
its funnel. Every line the README shows must be what Retorno prints, and every command must succeed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.quickstart import shown, terminals

ROOT = Path(__file__).resolve().parents[2]
UNSET = ("DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
UNSET_PREFIXES = ("RETORNO_", "TWILIO_", "TELEGRAM_", "RELOADLY_")


def _fresh_copy(target: Path) -> None:
    """What a clone of this commit holds once the change is committed: tracked and new files, nothing ignored."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _new_machine_env() -> dict[str, str]:
    """The environment of someone who never configured Retorno, with no virtualenv active."""
    ours = str(Path(sys.prefix) / "bin")
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith(UNSET_PREFIXES)}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != ours)
    return env


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_readme_quick_start_word_for_word(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no clone to copy")
    first, second = terminals((ROOT / "README.md").read_text(encoding="utf-8"))
    assert [s.command for s in first][-1] == "retorno run" and len(second) >= 7, "the quick start's shape changed"
    folder = tmp_path / "retorno"
    folder.mkdir()
    _fresh_copy(folder)
    env = _new_machine_env()
    install = [step for step in first if "pip install" in step.command]
    assert install, "the quick start installs Retorno"
    for step in install:  # the package index is outside the private network namespace below
        done = subprocess.run(["bash", "-c", step.command], cwd=folder, env=env, capture_output=True, text=True,
                              timeout=1200)
        assert done.returncode == 0, f"$ {step.command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    terminal_one = [step for step in first if step not in install]
    plan = {"first": [s.command for s in terminal_one], "second": [s.command for s in second], "env": env}
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({**plan, "loopback_up": True}), encoding="utf-8")
    driver = [sys.executable, "-m", "tests.quickstart", str(folder), str(plan_file)]
    ran = subprocess.run(["unshare", "--net", *driver], cwd=ROOT, capture_output=True, text=True, timeout=900)
    if ran.returncode != 0 and not ran.stdout:  # no private network namespace here (not root)
        if not _port_free(8000):
            if os.environ.get("CI"):
                pytest.fail(f"cannot make a network namespace and port 8000 is taken: {ran.stderr}")
            pytest.skip("port 8000 is taken and no private network namespace can be made")
        plan_file.write_text(json.dumps(plan), encoding="utf-8")
        ran = subprocess.run(driver, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["up"], f"retorno run did not answer:\n{result['first']}"
    for steps, outputs in ((terminal_one, result["first"]), (second, result["second"])):
        for step, output in zip(steps, outputs, strict=True):
            transcript = f"$ {step.command}\n{output['printed']}"
            if step.command != "retorno run":  # it runs until Ctrl-C
                assert output["status"] == 0, transcript
            assert shown(step.shows, output["printed"]) == [], transcript
    assert (folder / "retorno-data" / "retorno.sqlite3").exists(), "the data is where the README says"
