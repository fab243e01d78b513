"""Packer, the one boundary to it: the template as data, argv by pure code, output parsed.

- ``service_template`` / ``base_template`` build the JSON template as a dict (``amazon-ebs``
  builder; ``file`` + ``shell`` provisioners installing the artifact into ``/opt/{app}`` and
  running the bake commands; the image's tags). ``--dry-run`` shows exactly this dict.
- ``argv`` builds ``packer validate|build -machine-readable …`` as a list; values marked
  ``Secret`` (``-var`` values) are printed as ``<sensitive>`` by ``display`` and masked in
  every output line that goes to a log.
- ``parse_line`` reads ``-machine-readable`` lines (``time,target,type,data…`` with commas
  escaped as ``%!(PACKER_COMMA)``); the AMI id comes from the ``artifact,0,id`` line, and
  ``AMI: ami-…`` messages tell which AMI exists before tagging, so a failed bake can remove it.
- Packer runs with ``CHECKPOINT_DISABLE=1`` within the bake time limit; on timeout it gets
  SIGTERM first, which makes it terminate its instance and delete its key pair and security
  group itself.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klink.build import process
from klink.errors import ExternalCommandError

MASK = "<sensitive>"
# Only "AMI: ami-…" names an AMI this build created; other lines name the source AMI
# ("Found Image ID: ami-…"), which a failed bake must never deregister.
AMI_RE = re.compile(r"\bAMI: (ami-[0-9a-f]{8,17})\b")
TERM_GRACE = 120.0  # seconds Packer gets to clean up after SIGTERM


class PackerFailed(ExternalCommandError):
    """A Packer run failed; ``seen_images`` are AMIs it created (for the caller to remove)."""

    def __init__(
        self, message: str, *, output: str, seen_images: set[str], code: str | None = None
    ) -> None:
        super().__init__(message, output=output)
        self.seen_images = seen_images
        if code is not None:
            self.code = code


class Secret(str):
    """A command-line value that must never be logged."""

    __slots__ = ()


@dataclass(frozen=True)
class BuilderOptions:
    """The ``amazon-ebs`` settings of a target, from the environment's ``bake`` metadata."""

    region: str
    instance_type: str = "t3.micro"
    ssh_username: str = "ubuntu"
    communicator: str = "ssh"
    subnet_id: str | None = None
    endpoint_url: str | None = None  # a custom EC2 endpoint (tests: moto's server)
    start_retry_timeout: str | None = None  # of the shell provisioners (Packer's default: 5m)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, region: str, env: Mapping[str, Any], bake: Mapping[str, Any]) -> BuilderOptions:
        def text(key: str) -> str | None:
            value = bake.get(key)
            return str(value) if value is not None else None

        return cls(
            region=region,
            instance_type=text("instanceType") or "t3.micro",
            ssh_username=text("sshUsername") or "ubuntu",
            communicator=text("communicator") or "ssh",
            subnet_id=text("subnetId"),
            endpoint_url=env.get("endpoint_url"),
            start_retry_timeout=text("startRetryTimeout"),
        )


def _builder(
    options: BuilderOptions, source_ami: str, ami_name: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    builder: dict[str, Any] = {
        "type": "amazon-ebs",
        "region": options.region,
        "source_ami": source_ami,
        "instance_type": options.instance_type,
        "ami_name": ami_name,
        "communicator": options.communicator,
        "tags": dict(tags),
        "snapshot_tags": dict(tags),
        "run_tags": {"Name": f"klink bake {ami_name}", "klink:managed-by": "klink"},
    }
    if options.communicator == "ssh":
        builder["ssh_username"] = options.ssh_username
    if options.subnet_id:
        builder["subnet_id"] = options.subnet_id
    if options.endpoint_url:
        builder.update(
            {
                "custom_endpoint_ec2": options.endpoint_url,
                "skip_region_validation": True,
                "skip_credential_validation": True,
                "skip_metadata_api_check": True,
            }
        )
    builder.update(options.extra)
    return builder


def _shell(
    lines: Sequence[str], options: BuilderOptions, env: Sequence[str] = ()
) -> dict[str, Any]:
    provisioner: dict[str, Any] = {"type": "shell", "inline": list(lines)}
    if env:
        provisioner["environment_vars"] = list(env)
    if options.start_retry_timeout:
        provisioner["start_retry_timeout"] = options.start_retry_timeout
    return provisioner


def substitute(commands: Sequence[str], version: str) -> list[str]:
    return [c.replace("{{version}}", version) for c in commands]


def service_template(
    *,
    app: str,
    version: str,
    options: BuilderOptions,
    source_ami: str,
    ami_name: str,
    artifact_path: str,
    bake_commands: Sequence[str],
    tags: Mapping[str, str],
) -> dict[str, Any]:
    """A service image: the base AMI + the artifact in ``/opt/{app}`` + the bake commands."""
    remote = f"/tmp/{app}-{version}.tar.gz"  # noqa: S108 - on the build instance
    provisioners: list[dict[str, Any]] = [
        {"type": "file", "source": artifact_path, "destination": remote},
        _shell(
            [
                f"sudo mkdir -p /opt/{app}",
                f"sudo tar -xzf {remote} -C /opt/{app}",
                f"rm -f {remote}",
            ],
            options,
        ),
    ]
    if bake_commands:
        provisioners.append(
            _shell(
                substitute(bake_commands, version),
                options,
                [f"KLINK_APP={app}", f"KLINK_VERSION={version}"],
            )
        )
    return {
        "builders": [_builder(options, source_ami, ami_name, tags)],
        "provisioners": provisioners,
    }


def base_template(
    *,
    options: BuilderOptions,
    parent_ami: str,
    ami_name: str,
    steps: Sequence[str],
    tags: Mapping[str, str],
) -> dict[str, Any]:
    """A base image: the parent AMI + the steps every service needs."""
    template: dict[str, Any] = {"builders": [_builder(options, parent_ami, ami_name, tags)]}
    if steps:
        template["provisioners"] = [_shell(steps, options)]
    return template


def argv(action: str, template_path: Path, variables: Mapping[str, str] | None = None) -> list[str]:
    """``packer validate`` or ``packer build -machine-readable`` of a template file."""
    if action not in ("validate", "build"):
        raise ValueError(f"unknown packer action {action!r}")
    args = ["packer", action]
    if action == "build":
        args += ["-machine-readable", "-color=false", "-on-error=cleanup"]
    for name, value in sorted((variables or {}).items()):
        masked = Secret(f"{name}={value}") if isinstance(value, Secret) else f"{name}={value}"
        args += ["-var", masked]
    args.append(str(template_path))
    return args


def display(args: Sequence[str]) -> str:
    """The command for a log: secrets replaced by ``<sensitive>``."""
    shown = []
    for arg in args:
        if isinstance(arg, Secret):
            name, _, _value = arg.partition("=")
            shown.append(f"{name}={MASK}")
        else:
            shown.append(arg)
    return " ".join(shown)


def mask(line: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            line = line.replace(secret, MASK)
    return line


@dataclass(frozen=True)
class MachineLine:
    timestamp: str
    target: str
    type: str
    data: tuple[str, ...]

    @property
    def text(self) -> str | None:
        """What a person would read for this line (ui say/message/error), else None."""
        if self.type == "ui" and len(self.data) >= 2:
            return self.data[1]
        return None


def _unescape(value: str) -> str:
    return value.replace("%!(PACKER_COMMA)", ",").replace("\\n", "\n").replace("\\r", "\r")


def parse_line(line: str) -> MachineLine | None:
    parts = line.split(",")
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    return MachineLine(parts[0], parts[1], parts[2], tuple(_unescape(p) for p in parts[3:]))


def artifact_image(line: MachineLine) -> str | None:
    """``…,amazon-ebs,artifact,0,id,us-east-1:ami-123`` → ``ami-123``."""
    if line.type == "artifact" and len(line.data) >= 3 and line.data[1] == "id":
        ids = [part.partition(":")[2] or part for part in line.data[2].split(",")]
        return ids[0] if ids else None
    return None


@dataclass
class PackerRun:
    """What one ``packer build`` said: its human lines, the AMI made, AMIs seen on the way."""

    image: str | None = None
    seen_images: set[str] = field(default_factory=set)
    lines: list[str] = field(default_factory=list)

    def feed(self, raw: str) -> str | None:
        parsed = parse_line(raw)
        if parsed is None:
            text: str | None = raw
        else:
            image = artifact_image(parsed)
            if image:
                self.image = image
            text = parsed.text
        if text is not None:
            self.seen_images.update(AMI_RE.findall(text))
            for part in text.splitlines() or [""]:
                self.lines.append(part)
            return text
        return None


def packer_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["CHECKPOINT_DISABLE"] = "1"
    env.setdefault("AWS_POLL_DELAY_SECONDS", "2")
    return env


def run(
    template: Mapping[str, Any],
    *,
    work: Path,
    timeout: float,
    log: Callable[[str], None],
    secrets: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    grace: float = TERM_GRACE,
) -> PackerRun:
    """Validate then build ``template``; return the run (``run.image`` is the AMI id).

    Raise PackerFailed with Packer's last lines (code ``timeout`` when it ran out of time) and
    the AMIs it created; a failing ``packer validate`` raises ExternalCommandError.
    """
    work.mkdir(parents=True, exist_ok=True)
    path = work / "template.json"
    path.write_text(json.dumps(template, indent=2, sort_keys=True))
    environment = packer_env(env)
    validate = argv("validate", path)
    log(f"$ {display(validate)}")
    process.run(
        validate,
        cwd=work,
        env=environment,
        timeout=min(timeout, 120.0),
        on_line=lambda line: log(mask(line, secrets)),
        what="packer validate",
    )
    result = PackerRun()

    def on_line(raw: str) -> None:
        text = result.feed(raw)
        if text is not None:
            for part in text.splitlines():
                log(mask(part, secrets))

    build = argv("build", path)
    log(f"$ {display(build)}")
    try:
        process.run(
            build,
            cwd=work,
            env=environment,
            timeout=timeout,
            on_line=on_line,
            grace=grace,
            what="packer build",
        )
    except ExternalCommandError as exc:
        raise PackerFailed(
            exc.message,
            output=mask("\n".join(result.lines[-20:]), secrets),
            seen_images=set(result.seen_images),
            code=exc.code,
        ) from None
    if result.image is None:
        raise PackerFailed(
            "packer build finished without an artifact line naming an AMI",
            output=mask("\n".join(result.lines[-20:]), secrets),
            seen_images=set(result.seen_images),
        )
    return result
