"""JupyterLab as ``make lab`` starts it: the server lists and opens every notebook through its REST API, and
the ``terralab`` kernel runs a cell sent over the kernel websocket.

The server runs from this environment on a free loopback port with a random token, and is always shut
down (kernels first) when the module ends. Every wait is bounded. A missing ``jupyter`` skips with the reason
on a user's machine and fails in CI (``conftest.require``); a server that does not start always fails.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import websocket

from conftest import require

ROOT = Path(__file__).resolve().parents[1]
JUPYTER = Path(sys.executable).with_name("jupyter")
START_TIMEOUT_S = 90
HTTP_TIMEOUT_S = 15
EXECUTE_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running Jupyter server: base URL, token, and a small JSON client for its REST API."""

    def __init__(self, port: int, token: str, proc: subprocess.Popen, log: Path):
        self.base = f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"
        self.token = token
        self.proc = proc
        self.log = log

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, method: str, path: str, body: dict | None = None, expect: int = 200):
        status, payload = self.request(method, path, body)
        assert status == expect, f"{method} {path} → {status}: {payload[:300]!r}"
        return json.loads(payload) if payload else None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require(JUPYTER.exists(), f"{JUPYTER} not found: install the dev extra (pip install -e '.[dev]')")
    home = tmp_path_factory.mktemp("jupyter-home")
    token = secrets.token_hex(16)
    port = _free_port()
    env = {
        **os.environ,
        # Keep the user's Jupyter config, runtime files and lab workspaces out of the test.
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
    }
    log = home / "server.log"
    cmd = [
        str(JUPYTER),
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={ROOT}",
        # No update checks or extension-manager look-ups: the test must work offline.
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    srv = Server(port, token, proc, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if srv.request("GET", "/api/status")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"jupyter lab did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield srv
    finally:
        try:
            if proc.poll() is None:
                for kernel in json.loads(srv.request("GET", "/api/kernels")[1] or b"[]"):
                    srv.request("DELETE", f"/api/kernels/{kernel['id']}")
        except (OSError, ValueError):
            pass
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _notebooks_on_disk(folder: str) -> list[str]:
    return sorted(p.name for p in (ROOT / folder).glob("*.ipynb"))


def test_lab_serves_its_page_and_knows_the_terralab_kernel(server):
    status, page = server.request("GET", "/lab")
    assert status == 200 and b"JupyterLab" in page
    specs = server.json("GET", "/api/kernelspecs")
    assert "terralab" in specs["kernelspecs"], (
        f"kernel 'terralab' not registered: {sorted(specs['kernelspecs'])}"
    )
    assert specs["kernelspecs"]["terralab"]["spec"]["display_name"] == "Python (terralab)"


@pytest.mark.parametrize("folder", ["notebooks", "tests/notebooks_sweep"])
def test_every_notebook_is_listed_and_opens_with_a_parameters_cell(server, folder):
    listing = server.json("GET", f"/api/contents/{folder}")
    assert listing["type"] == "directory"
    listed = sorted(item["name"] for item in listing["content"] if item["type"] == "notebook")
    assert listed == _notebooks_on_disk(folder)
    for name in listed:
        model = server.json("GET", f"/api/contents/{folder}/{name}?content=1")
        assert model["type"] == "notebook" and model["format"] == "json"
        nb = model["content"]
        assert nb["metadata"]["kernelspec"]["name"] == "terralab", name
        tagged = [c for c in nb["cells"] if "parameters" in (c["metadata"].get("tags") or [])]
        assert len(tagged) == 1 and tagged[0]["cell_type"] == "code", (
            f"{name}: no parameters-tagged code cell"
        )


def test_terralab_kernel_runs_a_cell_over_the_websocket(server):
    kernel = server.json("POST", "/api/kernels", {"name": "terralab"}, expect=201)
    try:
        ws = websocket.create_connection(
            f"{server.ws_base}/api/kernels/{kernel['id']}/channels?session_id={uuid.uuid4().hex}",
            header=[f"Authorization: token {server.token}"],
            timeout=HTTP_TIMEOUT_S,
        )
        try:
            msg_id = uuid.uuid4().hex
            code = "import sys\nimport terralab\nprint(sys.prefix)\n1 + 1"
            ws.send(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "username": "test",
                            "session": uuid.uuid4().hex,
                            "msg_type": "execute_request",
                            "version": "5.3",
                            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                        },
                        "parent_header": {},
                        "metadata": {},
                        "channel": "shell",
                        "buffers": [],
                        "content": {
                            "code": code,
                            "silent": False,
                            "store_history": False,
                            "user_expressions": {},
                            "allow_stdin": False,
                            "stop_on_error": True,
                        },
                    }
                )
            )
            result, stdout, reply, idle = None, "", None, False
            deadline = time.monotonic() + EXECUTE_TIMEOUT_S
            while not (idle and reply) and time.monotonic() < deadline:
                try:
                    msg = json.loads(ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["header"]["msg_type"]
                if kind == "execute_result":
                    result = msg["content"]["data"]["text/plain"]
                elif kind == "stream" and msg["content"]["name"] == "stdout":
                    stdout += msg["content"]["text"]
                elif kind == "execute_reply":
                    reply = msg["content"]
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True
            assert reply is not None, f"no execute_reply within {EXECUTE_TIMEOUT_S} s"
            assert reply["status"] == "ok", reply
            assert result == "2"
            # The terralab kernel is this environment's Python, so it imports the package under test.
            assert Path(stdout.strip()).resolve() == Path(sys.prefix).resolve()
        finally:
            ws.close()
    finally:
        server.request("DELETE", f"/api/kernels/{kernel['id']}")
