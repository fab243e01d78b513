"""Traffic by weight through the whole platform: undo while warm, and deploy against its floor.

Every figure comes from one run, sizes interleaved (1, 4, 16 instances) round by round:

- **floor** (``traffic_floor.floor_round``, the same function as ``bench/traffic_floor.py``):
  a bare script starts N ``hello`` 2.0 processes beside N 1.0 behind a hand-written HAProxy,
  waits for HAProxy's checks, shifts the weights: from the first start to every answer 2.0.
- **local deploy** (``klink serve`` with its engine, the local cloud daemon, HAProxy, real
  instances): from ``POST /deploy/hello/dev`` to the moment after which every answer (4
  keep-alive clients through HAProxy) comes from the new version: the sent time of the last
  answer from the old one. Ratio to the floor of the same size, same round.
- **local undo while warm**: that deployment keeps the old group warm (``keepWarmSeconds``
  600); under the same load, ``POST /deploy/hello/dev/undo``, then the time from the request
  to the sent time of the last answer from the new version (0 when none came after it).
- **aws (moto) undo while warm**: the same platform with an aws environment whose endpoint is
  moto's server on loopback, a load balancer whose listener forwards to ``web``; moto's request
  recorder counts the ``ModifyListener`` requests of the undo: those that move weights (the
  listener's members kept) and those that only remove the undone group's weight-0 member.

    .venv/bin/python bench/weights.py [--rounds 3] [--no-aws]
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.e2e.benchkit import (  # noqa: E402
    load_average,
    make_image,
    median,
    seconds_between,
    set_capacity,
    split_tasks,
    table,
    write_result,
)
from tests.e2e.platform import Platform, free_port, local_hello  # noqa: E402

import traffic_floor  # noqa: E402  (beside this file)

SIZES = (1, 4, 16)
WARM = 600
INTERVAL = 0.2


def until_current(platform: Platform, deployment: str, action: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        record = platform.call("GET", f"/deploy/deployments/{deployment}")
        if record["current"] == action:
            return
        if record["status"] in ("failed", "completed", "invalid", "cancelled"):
            raise SystemExit(f"{deployment} {record['status']} before {action}: {record['error']}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{deployment} never reached {action}")
        time.sleep(0.02)


def deployed(platform: Platform, image: str, message: str) -> None:
    record = platform.wait(platform.deploy("hello", "dev", image, message), 300)
    if record["status"] != "completed":
        raise SystemExit(f"deploy failed: {record['error']}")


def local_round(platform: Platform, work: Path, frontend: int, size: int, n: int) -> dict[str, Any]:
    old, new = f"{n}.0", f"{n}.1"
    set_capacity(platform, size, keepWarmSeconds=0)
    deployed(platform, make_image(platform.home, old, work), f"bench base {old}")
    set_capacity(platform, size, keepWarmSeconds=WARM)
    image = make_image(platform.home, new, work)
    prober = traffic_floor.Prober(frontend)
    with prober.running():
        time.sleep(0.3)
        asked = time.monotonic()
        deployment = platform.deploy("hello", "dev", image, f"bench {new}")
        until_current(platform, deployment, "keep_warm", 300)
        warm_at = time.monotonic()
        time.sleep(0.3)
        undo_at = time.monotonic()
        platform.call("POST", "/deploy/hello/dev/undo", json={"message": "bench undo"})
        undo_answered = time.monotonic()
        record = platform.wait(deployment, 300)
        time.sleep(0.3)
    if record["status"] != "completed" or not record["undo"]:
        raise SystemExit(f"undo failed: {record['error']}")
    answers = sorted(prober.answers)
    # Where the deploy's time went: preparation (request to the first deployment action), and
    # each wait of the deployment phase, from the task rows (the undo's rows left out).
    tasks = platform.tasks(deployment)
    first_deploy = next(t for t in tasks if t["phase"] == "deploy")
    shifted = next(t for t in tasks if t["action"] == "shift_traffic")
    split = split_tasks([t for t in tasks if t["seq"] < shifted["seq"]])
    last_old = max((s for s, v in answers if asked <= s <= warm_at and v == old), default=asked)
    last_new = max((s for s, v in answers if s >= undo_at and v == new), default=undo_at)
    if not any(v == old for s, v in answers if s > last_new):
        raise SystemExit("no answer from the old version after the undo")
    return {
        "deploy_s": round(last_old - asked, 3),
        "undo_s": round(last_new - undo_at, 4),
        "undo_request_s": round(undo_answered - undo_at, 4),
        "failed": prober.failed,
        "answers": len(answers),
        "preparation_s": round(seconds_between(record["createdAt"], first_deploy["startedAt"]), 3),
        "to_shift_s": round(seconds_between(record["createdAt"], shifted["endedAt"]), 3),
        "waits": split["waits"],
    }


# aws on moto -------------------------------------------------------------------------------
def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            return process, url
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit("moto did not start") from None
            time.sleep(0.1)


def aws_setup(platform: Platform, moto: str) -> Any:
    import boto3

    region = "us-east-1"
    env = {"provider": "aws", "region": region, "endpoint_url": moto}
    platform.call("PUT", "/metadata/environments/prod", json={"metadata": env})
    app = {"metadata": {"contact": "team@example.com"}}
    platform.call("PUT", "/metadata/applications/search", json=app)
    platform.call("POST", "/config/repos/search/prod")
    ec2 = boto3.client("ec2", endpoint_url=moto, region_name=region)
    elbv2 = boto3.client("elbv2", endpoint_url=moto, region_name=region)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    home = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=8080, VpcId=vpc)
    home_arn = home["TargetGroups"][0]["TargetGroupArn"]
    lb = elbv2.create_load_balancer(Name="web", Subnets=[s["SubnetId"] for s in subnets[:2]])
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": home_arn}],
    )
    return ec2


def aws_image(ec2: Any, version: str) -> str:
    image_id: str = ec2.register_image(Name=f"search-{version}", Description="x")["ImageId"]
    tags = [{"Key": "klink:app", "Value": "search"}, {"Key": "klink:version", "Value": version}]
    ec2.create_tags(Resources=[image_id], Tags=tags)
    return image_id


def aws_params(platform: Platform, size: int, warm: int) -> None:
    from tests.e2e.platform import push_config

    params = {
        "instanceType": "t3.micro",
        "subnetPurpose": None,
        "healthCheckIntervalSeconds": INTERVAL,
        "targetGroups": ["web"],
        "keepWarmSeconds": warm,
        "min": size,
        "max": size,
        "desiredCapacity": size,
    }
    push_config(platform, "search", "prod", {"deployment-params.json": params})


def modify_listener_requests(moto: str) -> list[int]:
    """For each ModifyListener in moto's recording: how many target groups it forwards to."""
    text = httpx.get(f"{moto}/moto-api/recorder/download-recording", timeout=30).text
    import json

    out = []
    for row in text.splitlines():
        if not row.strip():
            continue
        entry = json.loads(row)
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode(errors="replace")
        if "Action=ModifyListener" not in body:
            continue
        fields = parse_qs(body)
        out.append(sum(1 for k in fields if k.endswith("TargetGroupArn") and "ForwardConfig" in k))
    return out


def aws_round(platform: Platform, ec2: Any, moto: str, size: int, n: int) -> dict[str, Any]:
    aws_params(platform, size, 0)
    record = platform.wait(platform.deploy("search", "prod", aws_image(ec2, f"{n}.0")), 300)
    if record["status"] != "completed":
        raise SystemExit(f"aws base deploy failed: {record['error']}")
    aws_params(platform, size, WARM)
    deployment = platform.deploy("search", "prod", aws_image(ec2, f"{n}.1"))
    until_current(platform, deployment, "keep_warm", 300)
    httpx.post(f"{moto}/moto-api/recorder/reset-recording", timeout=10)
    httpx.post(f"{moto}/moto-api/recorder/start-recording", timeout=10)
    platform.call("POST", "/deploy/search/prod/undo", json={"message": "bench undo"})
    record = platform.wait(deployment, 300)
    httpx.post(f"{moto}/moto-api/recorder/stop-recording", timeout=10)
    if record["status"] != "completed" or not record["undo"]:
        raise SystemExit(f"aws undo failed: {record['error']}")
    members = modify_listener_requests(moto)
    # Before the undo the listener forwards to 3 target groups (web, old, new): a request that
    # keeps 3 moves weights; one with 2 takes the undone group's weight-0 member out.
    return {
        "shift_calls": sum(1 for m in members if m >= 3),
        "detach_calls": sum(1 for m in members if m < 3),
        "modify_listener_calls": len(members),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-aws", action="store_true")
    args = parser.parse_args()
    from klink.providers.local import addresses

    floors: dict[int, list[float]] = {s: [] for s in SIZES}
    local: dict[int, list[dict[str, Any]]] = {s: [] for s in SIZES}
    aws: dict[int, list[dict[str, Any]]] = {s: [] for s in SIZES}
    moto_process = None
    with tempfile.TemporaryDirectory(prefix="klink-bench-weights-") as temp:
        work = Path(temp)
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "MOTO_ENABLE_RECORDING": "True",
                "MOTO_RECORDER_FILEPATH": str(work / "moto-recording"),
            }
        )
        if not args.no_aws:
            moto_process, moto = start_moto()
        platform = Platform(work / "platform")
        block = addresses.claim(work / "floor")
        try:
            used: set[str] = set()
            ips = []
            for _ in range(2 * max(SIZES)):
                ips.append(block.allocate(used))
                used.add(ips[-1])
            platform.start()
            # Klink looks every 0.2 s (the floor's script every 20 ms); HAProxy's own checks
            # are the same for both: inter 1 s, rise 2.
            url = local_hello(platform, {"healthCheckIntervalSeconds": INTERVAL})
            frontend = int(url.rsplit(":", 1)[1])
            ec2 = None if args.no_aws else aws_setup(platform, moto)
            load_before, n = load_average(), 0
            for round_ in range(args.rounds):
                for size in SIZES:
                    n += 1
                    _healthy, total = traffic_floor.floor_round(work / "floor", ips, size)
                    floors[size].append(total)
                    local[size].append(local_round(platform, work, frontend, size, n))
                    if ec2 is not None:
                        aws[size].append(aws_round(platform, ec2, moto, size, n))
                    print(
                        f"  round {round_ + 1}, {size:>2}: floor {total:.3f} s, "
                        f"local {local[size][-1]}, aws {aws[size][-1] if ec2 else '-'}"
                    )
            load_after = load_average()
        finally:
            platform.close()
            block.release()
            if moto_process is not None:
                moto_process.terminate()
                moto_process.wait(timeout=10)
    rows = []
    for size in SIZES:
        floor = median(floors[size])
        deploy = median([r["deploy_s"] for r in local[size]])
        ratios = [r["deploy_s"] / f for r, f in zip(local[size], floors[size], strict=True)]
        rows.append(
            {
                "instances": size,
                "floor_s": floor,
                "deploy_s": deploy,
                "deploy_ratio": median(ratios),
                "undo_warm_s": median([r["undo_s"] for r in local[size]]),
                "undo_warm_max_s": max(r["undo_s"] for r in local[size]),
                "undo_request_s": median([r["undo_request_s"] for r in local[size]]),
                "failed": sum(r["failed"] for r in local[size]),
                "aws_shift_calls": sorted({r["shift_calls"] for r in aws[size]}),
                "aws_modify_listener_calls": sorted(
                    {r["modify_listener_calls"] for r in aws[size]}
                ),
                "local_runs": local[size],
                "aws_runs": aws[size],
                "floor_runs": floors[size],
            }
        )
    print(
        table(
            ["instances", "floor s", "deploy s", "ratio", "undo warm s (max)", "failed", "aws"],
            [
                [
                    r["instances"],
                    r["floor_s"],
                    r["deploy_s"],
                    r["deploy_ratio"],
                    f"{r['undo_warm_s']} ({r['undo_warm_max_s']})",
                    r["failed"],
                    f"{r['aws_shift_calls']} shift, {r['aws_modify_listener_calls']} Modify",
                ]
                for r in rows
            ],
        )
    )
    undo_met = all(r["undo_warm_max_s"] <= 0.25 for r in rows)
    deploy_met = all(r["deploy_ratio"] <= 1.2 for r in rows)
    aws_met = all(r["aws_shift_calls"] == [1] for r in rows) if not args.no_aws else None
    print(f"undo while warm <= 0.25 s at every size: {'met' if undo_met else 'MISSED'}")
    print(f"deploy <= 1.2x the floor at every size: {'met' if deploy_met else 'MISSED'}")
    print(f"aws: one call moves traffic back at every size: {aws_met}")
    path = write_result(
        "weights",
        {
            "rounds": args.rounds,
            "load_average": [load_before, load_after],
            "measure": __doc__.split("\n\n")[1],
            "targets": {"undo_warm_s": 0.25, "deploy_ratio": 1.2, "aws_shift_calls": 1},
            "met": {"undo": undo_met, "deploy": deploy_met, "aws": aws_met},
            "results": rows,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
