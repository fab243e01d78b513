"""Image cleanup: which images to keep, decided as data; what is in use, asked of others.

Keep the newest ``keep`` images of the app, every image a group that exists launches, and
every image of the last two completed deployments of each environment (asked of the deploy
service). When the answer about use is incomplete (the deploy service is missing or
unreachable, a provider cannot list its groups), nothing is removed: keeping an image too long
costs storage, removing one in use breaks the next scale-up or undo.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from klink.errors import KlinkError
from klink.providers.base import Image, Provider

log = logging.getLogger(__name__)
DEPLOYMENTS_PER_ENV = 2


class UseUnknown(KlinkError):
    """Klink cannot tell which images are in use; it then keeps them all."""

    status = 409
    code = "in_use_unknown"


@dataclass(frozen=True)
class Decision:
    keep: tuple[str, ...]
    remove: tuple[str, ...]


def decide(images: Sequence[Image], keep: int, in_use: Iterable[str]) -> Decision:
    """``images`` newest first; pure: the same input gives the same answer."""
    used = set(in_use)
    kept, removed = [], []
    for index, image in enumerate(images):
        if index < keep or image.id in used:
            kept.append(image.id)
        else:
            removed.append(image.id)
    return Decision(tuple(kept), tuple(removed))


def images_of_deployments(deployments: Sequence[Mapping[str, Any]]) -> set[str]:
    """The images of the last two completed deployments of each environment.

    ``deployments`` as the deploy service lists them, newest first.
    """
    per_env: dict[str, int] = {}
    images: set[str] = set()
    for deployment in deployments:
        env = str(deployment.get("env"))
        if per_env.get(env, 0) >= DEPLOYMENTS_PER_ENV:
            continue
        per_env[env] = per_env.get(env, 0) + 1
        image = deployment.get("image")
        if isinstance(image, str):
            images.add(image)
    return images


def deployed_images(deploy_http: Any, app: str) -> set[str]:
    """Ask the deploy service; raise UseUnknown when it cannot answer."""
    import httpx

    try:
        response = deploy_http.get(
            "/deployments", params={"app": app, "status": "completed", "limit": 50}
        )
    except httpx.HTTPError as exc:
        raise UseUnknown(f"the deploy service is unreachable ({exc})") from None
    if response.status_code != 200:
        raise UseUnknown(f"the deploy service answered HTTP {response.status_code}")
    try:
        deployments = response.json()["deployments"]
    except (ValueError, KeyError, TypeError):
        raise UseUnknown("the deploy service's answer has no deployments list") from None
    return images_of_deployments(deployments)


def group_images(provider: Provider, app: str) -> set[str]:
    """Images launched by the app's groups that exist in one environment's provider."""
    images: set[str] = set()
    try:
        for group in provider.list_groups(rf"{app}-[a-z][a-z0-9]*-v\d{{3}}"):
            if group.launch_template:
                images.add(provider.describe_launch_template(group.launch_template).image_id)
    except KlinkError as exc:
        raise UseUnknown(f"cannot list the groups of {app}: {exc.message}") from None
    return images
