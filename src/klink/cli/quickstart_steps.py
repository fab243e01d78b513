"""The steps of ``klink quickstart``: start the platform, set up ``hello``, deploy, undo.

Everything here is what a user would do by hand: HTTP calls to the APIs, plain git against
the config service, and a bounded loopback load through HAProxy while traffic moves.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from klink.cli.api import Api, CliError, Target, default_server, klink_home, resolve
from klink.cli.build import run_job
from klink.cli.loadgen import LoadGenerator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

APP, ENV = "hello", "dev"
TARGET_GROUP = "hello"
SERVICE_PORT = 8080
FINAL = ("completed", "failed", "invalid", "cancelled")
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "hello"
GIT_IDENTITY = ["-c", "user.name=Klink quickstart", "-c", "user.email=quickstart@klink.invalid"]


class Platform:
    """The server (and, through it, the local cloud) of this KLINK_HOME."""

    def __init__(self, target: Target, progress: Callable[[str], None]) -> None:
        self.server = target.server
        self.home = klink_home()
        self.progress = progress

    def target(self, token: str | None = None) -> Target:
        """Resolved after start: a first start writes the admin token the CLI then uses."""
        return resolve(self.server, token)

    def reachable(self) -> bool:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(self.server)
        try:
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=2)
            connection.request("GET", "/metadata/ping")
            ok = connection.getresponse().status == 200
            connection.close()
        except OSError:
            return False
        return ok

    def ensure_running(self) -> bool:
        """Start `klink serve` (detached) unless it runs; True when this call started it."""
        if self.reachable():
            self.progress(f"using the Klink server at {self.server}")
            return False
        if self.server != default_server():
            raise CliError(f"no Klink server answers at {self.server}")
        from klink.settings import open_private, private_dir

        private_dir(Path(self.home))
        log_path = os.path.join(self.home, "serve.log")
        self.progress(f"starting klink serve at {self.server} (log: {log_path})")
        with open_private(log_path) as log:  # 0600: a log may carry what users typed
            process = subprocess.Popen(
                [sys.executable, "-m", "klink.cli.main", "serve"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while not self.reachable():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-1:]
                raise CliError(f"klink serve did not start: {tail[0] if tail else 'no output'}")
            time.sleep(0.1)
        return True

    def stop(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "klink.cli.main", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


class Setup:
    def __init__(self, balancer: str, source: Path, platform: Platform) -> None:
        self.balancer = balancer
        self.source = source
        self.platform = platform


def _git(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *argv], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        # A rejected push says why on the "remote:" lines; keep those.
        remote = [
            line.removeprefix("remote:").strip() for line in lines if line.startswith("remote:")
        ]
        reason = "; ".join(r for r in remote if r) or (lines[-1] if lines else str(done.returncode))
        raise CliError(f"git {argv[0]} failed: {reason}")
    return done.stdout


def _state(home: str) -> dict[str, Any]:
    path = Path(home) / "quickstart" / "state.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        state = {}
    if "frontend_port" not in state:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            state["frontend_port"] = sock.getsockname()[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state))
    return state


def _source_repo(home: str, progress: Callable[[str], None]) -> Path:
    source = Path(home) / "quickstart" / "hello-src"
    if (source / ".git").exists():
        return source
    if not EXAMPLE.is_dir():
        raise CliError(f"the example is missing: {EXAMPLE} (run from a Klink checkout)")
    progress(f"copying examples/hello into a git repository at {source}")
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    _git(["init", "-q", "-b", "main"], source)
    _git(["add", "-A"], source)
    _git([*GIT_IDENTITY, "commit", "-q", "-m", "hello: the example service"], source)
    return source


def setup(client: Api, platform: Platform, progress: Callable[[str], None]) -> Setup:
    if not client.exists(f"/metadata/environments/{ENV}"):
        progress(f"creating environment {ENV} (local provider)")
        client.call(
            "PUT",
            f"/metadata/environments/{ENV}",
            json={"metadata": {"provider": "local", "createConfigRepo": True}},
        )
    source = _source_repo(platform.home, progress)
    metadata = {
        "contact": "quickstart@example.com",
        "srcRepo": str(source),
        "buildCommand": "sh build.sh",
        "startCommand": "cd opt/hello && exec python3 hello.py",
        "version": "1.0",
    }
    if not client.exists(f"/metadata/applications/{APP}"):
        progress(f"creating application {APP} from examples/hello")
        client.call("PUT", f"/metadata/applications/{APP}", json={"metadata": metadata})
    else:
        current = client.call("GET", f"/metadata/applications/{APP}")["metadata"]
        for key, value in metadata.items():
            if current.get(key) != value:
                client.call("PUT", f"/metadata/applications/{APP}/{key}", json={"value": value})
    client.call("POST", f"/config/repos/{APP}/{ENV}")
    port = int(_state(platform.home)["frontend_port"])
    _push_config(client, platform, port, progress)
    progress(f"applying {APP}'s infrastructure (an HAProxy frontend on 127.0.0.1:{port})")
    client.call("POST", f"/infra/{APP}/{ENV}/apply", json={})
    return Setup(balancer=f"http://127.0.0.1:{port}", source=source, platform=platform)


def change_config(
    client: Api,
    platform: Platform,
    change: Callable[[Path], None],
    message: str,
    progress: Callable[[str], None],
) -> bool:
    """Clone the app's config repo over git (with the token), let ``change`` edit the files,
    commit and push with plain git; False when nothing changed."""
    token = client.target.token or ""
    basic = base64.b64encode(f"klink:{token}".encode()).decode()
    env = {
        **os.environ,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        "GIT_TERMINAL_PROMPT": "0",
    }
    url = f"{platform.server}/config/git/{APP}-{ENV}.git"
    with tempfile.TemporaryDirectory(prefix="klink-quickstart-") as temp:
        work = Path(temp) / "config"
        _git(["clone", "-q", url, str(work)], Path(temp), env)
        change(work)
        _git(["add", "-A"], work)
        if not _git(["status", "--porcelain"], work).strip():
            return False
        progress(message)
        _git([*GIT_IDENTITY, "commit", "-q", "-m", f"quickstart: {message}"], work)
        _git(["push", "-q", "origin", "HEAD"], work, env)
        return True


def edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def plain_params(params: dict[str, Any]) -> None:
    """Red-black, one instance, through the target group (and no canary left from a run that
    stopped half way)."""
    params.update(
        {
            "strategy": "redblack",
            "min": 1,
            "max": 1,
            "desiredCapacity": 1,
            "targetGroups": [TARGET_GROUP],
            "healthCheckIntervalSeconds": 0.5,
            "keepPreviousGroup": True,
        }
    )
    params.pop("canary", None)


def plain_props(props: dict[str, Any]) -> None:
    props.update(
        {
            "service.port": SERVICE_PORT,
            "healthcheck.path": "/healthcheck",
            "greeting": "hello from Klink",
        }
    )
    for key in [k for k in props if k.startswith("fault.")]:
        del props[key]


def _push_config(
    client: Api, platform: Platform, port: int, progress: Callable[[str], None]
) -> None:
    def change(work: Path) -> None:
        edit_json(work / "deployment-params.json", plain_params)
        edit_json(work / "application-properties.json", plain_props)
        (work / "infrastructure.yaml").write_text(
            "targetGroups:\n"
            f"  {TARGET_GROUP}:\n"
            f"    port: {SERVICE_PORT}\n"
            f"    frontendPort: {port}\n"
            "    healthCheck: {path: /healthcheck, intervalSeconds: 5, healthyThreshold: 2,"
            " unhealthyThreshold: 2}\n"
            "    deregistrationDelaySeconds: 5\n"
        )

    message = f"pushing {APP}'s config: a target group, keepPreviousGroup, properties"
    change_config(client, platform, change, message, progress)


def build_and_bake(client: Api, quiet: bool, progress: Callable[[str], None]) -> tuple[str, str]:
    progress(f"klink build {APP}")
    version = str(run_job(client, f"/build/builds/{APP}", {}, quiet)["version"])
    progress(f"klink bake {APP} {version}")
    try:
        image = run_job(client, f"/bake/images/{APP}/{version}", {"target": "local"}, quiet)
    except CliError as exc:
        if "no base image" not in exc.message:
            raise
        progress("no base image yet: klink bake-base --target local")
        run_job(client, "/bake/base", {"target": "local"}, quiet)
        image = run_job(client, f"/bake/images/{APP}/{version}", {"target": "local"}, quiet)
    return version, str(image["image"])


def follow(client: Api, deployment: str, progress: Callable[[str], None]) -> str:
    since = 0
    while True:
        page = client.call("GET", f"/deploy/deployments/{deployment}/logs", params={"since": since})
        for line in page["logs"]:
            progress(f"  {line['at'][11:19]} {line['message']}")
        since = page["next"]
        if page["status"] in FINAL or page["status"] == "paused":
            return str(page["status"])
        time.sleep(0.3)


def _load(balancer: str) -> LoadGenerator:
    return LoadGenerator(f"{balancer}/healthcheck", threads=4, max_seconds=600)


def run(client: Api, setup: Setup, progress: Callable[[str], None], quiet: bool) -> dict[str, Any]:
    deploys: list[dict[str, Any]] = []
    ok = True
    version, image = build_and_bake(client, quiet, progress)
    progress(f"klink deploy {APP} {ENV} {image} -m first")
    first = client.call("POST", f"/deploy/{APP}/{ENV}", json={"image": image, "message": "first"})
    status = follow(client, first["id"], progress)
    ok &= status == "completed"
    deploys.append(
        {
            "version": version,
            "image": image,
            "deployment": first["id"],
            "status": status,
            "requests": 0,
            "failed": 0,
            "versions_seen": [],
        }
    )

    (setup.source / "VERSION").write_text(f"changed by quickstart at {time.time():.0f}\n")
    _git(["add", "-A"], setup.source)
    _git([*GIT_IDENTITY, "commit", "-q", "-m", "hello: a new version"], setup.source)
    version, image = build_and_bake(client, quiet, progress)
    progress(f"klink deploy {APP} {ENV} {image} -m second, under load through {setup.balancer}")
    with _load(setup.balancer) as load:
        second = client.call(
            "POST", f"/deploy/{APP}/{ENV}", json={"image": image, "message": "second, under load"}
        )
        status = follow(client, second["id"], progress)
    assert load.result is not None
    ok &= status == "completed" and load.result.failed == 0
    deploys.append(
        {
            "version": version,
            "image": image,
            "deployment": second["id"],
            "status": status,
            **_figures(load),
        }
    )

    progress(f"klink undo {APP} {ENV} -m 'quickstart: undo', under load")
    with _load(setup.balancer) as load:
        undo = client.call(
            "POST", f"/deploy/{APP}/{ENV}/undo", json={"message": "quickstart: undo"}
        )
        undo_id = str((undo or {}).get("id") or second["id"])
        status = follow(client, undo_id, progress)
    assert load.result is not None
    ok &= status == "completed" and load.result.failed == 0
    undone = {"deployment": undo_id, "undid": second["id"], "status": status, **_figures(load)}

    from klink.cli import quickstart_canary

    canary = quickstart_canary.run(client, setup.platform, setup.balancer, image, progress)
    ok &= canary["status"] == "completed" and canary["undone"] and canary["verdict"] == "fail"
    return {"ok": bool(ok), "deploys": deploys, "undo": undone, "canary": canary}


def _figures(load: LoadGenerator) -> dict[str, Any]:
    assert load.result is not None
    figures = load.result.to_json()
    return {k: figures[k] for k in ("requests", "failed", "versions_seen", "seconds")}
