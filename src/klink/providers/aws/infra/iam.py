"""IAM: a role EC2 may assume, its inline policies, and an instance profile of the same name.

Roles and instance profiles live under the path ``/klink/`` so they are listed without reading
every role of the account.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from klink.providers.aws.convert import tag_list, tags_of
from klink.providers.aws.infra.common import Base, Found, canonical, document, owner, sort_out
from klink.providers.infra import RoleSpec

IAM_PATH = "/klink/"


class Roles(Base):
    # IAM ----------------------------------------------------------------------------------
    def _role(self, name: str) -> RoleSpec | None:
        iam = self._iam

        def run() -> RoleSpec | None:
            try:
                role = iam.get_role(RoleName=name)["Role"]
            except iam.exceptions.NoSuchEntityException:
                return None
            tags = tags_of(role.get("Tags"))
            if not tags:
                tags = tags_of(iam.list_role_tags(RoleName=name).get("Tags"))
            policies: dict[str, Any] = {}
            pages = iam.get_paginator("list_role_policies").paginate(RoleName=name)
            for pname in (p for page in pages for p in page["PolicyNames"]):
                raw = iam.get_role_policy(RoleName=name, PolicyName=pname)["PolicyDocument"]
                policies[pname] = document(raw)
            try:
                profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
                has_profile = any(r["RoleName"] == name for r in profile.get("Roles", ()))
            except iam.exceptions.NoSuchEntityException:
                has_profile = False
            return RoleSpec(
                name=name,
                policies=policies,
                trust_policy=document(role.get("AssumeRolePolicyDocument", {})),
                tags=tags,
                instance_profile=has_profile,
                id=role.get("Arn"),
            )

        return self.session.call(f"describe role {name}", run)

    def roles(self, app: str, env: str, names: Iterable[str]) -> Found:
        iam = self._iam
        wanted = set(names)

        def run() -> list[str]:
            pages = iam.get_paginator("list_roles").paginate(PathPrefix=IAM_PATH)
            return [r["RoleName"] for page in pages for r in page["Roles"]]

        # Reading a role costs several calls; only names the app may own (``{app}`` or
        # ``{app}-…``, the definition's rule) can be its roles, so only those are read.
        listed = {
            n for n in self.session.call("list roles", run) if n == app or n.startswith(f"{app}-")
        }
        found = Found()
        for name in sorted(listed | wanted):
            role = self._role(name)
            if role is None:
                continue
            where = sort_out(role.tags, name, app, env, wanted)
            if where == "foreign":
                found.foreign[name] = owner(role.tags) or "?"
            elif where == "mine":
                found.mine[name] = role
        return found

    def sync_role(self, spec: RoleSpec) -> None:
        """Create or update the role, its inline policies and its instance profile."""
        iam = self._iam
        live = self._role(spec.name)
        trust = json.dumps(spec.trust_policy, sort_keys=True)
        if live is None:
            self.session.call(
                f"create role {spec.name}",
                lambda: iam.create_role(
                    RoleName=spec.name,
                    Path=IAM_PATH,
                    AssumeRolePolicyDocument=trust,
                    Tags=tag_list(spec.tags),
                ),
            )
            live = RoleSpec(spec.name, {}, trust_policy={}, tags=spec.tags, instance_profile=False)
        elif canonical(live.trust_policy) != canonical(spec.trust_policy):
            self.session.call(
                f"update trust policy of {spec.name}",
                lambda: iam.update_assume_role_policy(RoleName=spec.name, PolicyDocument=trust),
            )
        for pname, wanted in sorted(spec.policies.items()):
            if canonical(live.policies.get(pname)) != canonical(wanted):
                body = json.dumps(wanted, sort_keys=True)
                self.session.call(
                    f"put policy {pname} of {spec.name}",
                    lambda p=pname, b=body: iam.put_role_policy(  # type: ignore[misc]
                        RoleName=spec.name, PolicyName=p, PolicyDocument=b
                    ),
                )
        for pname in sorted(set(live.policies) - set(spec.policies)):
            self._ignore_missing(
                f"delete policy {pname} of {spec.name}",
                lambda p=pname: iam.delete_role_policy(RoleName=spec.name, PolicyName=p),
            )
        missing = {k: v for k, v in spec.tags.items() if live.tags.get(k) != v}
        if missing:
            self.session.call(
                f"tag role {spec.name}",
                lambda: iam.tag_role(RoleName=spec.name, Tags=tag_list(missing)),
            )
        if not live.instance_profile:
            self._ensure_profile(spec)

    def _ensure_profile(self, spec: RoleSpec) -> None:
        iam = self._iam

        def run() -> None:
            try:
                profile = iam.get_instance_profile(InstanceProfileName=spec.name)["InstanceProfile"]
            except iam.exceptions.NoSuchEntityException:
                profile = iam.create_instance_profile(
                    InstanceProfileName=spec.name, Path=IAM_PATH, Tags=tag_list(spec.tags)
                )["InstanceProfile"]
            held = [r["RoleName"] for r in profile.get("Roles", ())]
            for other in held:
                if other != spec.name:
                    iam.remove_role_from_instance_profile(
                        InstanceProfileName=spec.name, RoleName=other
                    )
            if spec.name not in held:
                iam.add_role_to_instance_profile(InstanceProfileName=spec.name, RoleName=spec.name)

        self.session.call(f"instance profile {spec.name}", run)

    def delete_role(self, name: str) -> None:
        """Delete the instance profile, the inline and attached policies, then the role."""
        iam = self._iam

        def run() -> None:
            try:
                profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
            except iam.exceptions.NoSuchEntityException:
                profile = None
            if profile is not None:
                for held in profile.get("Roles", ()):
                    iam.remove_role_from_instance_profile(
                        InstanceProfileName=name, RoleName=held["RoleName"]
                    )
                iam.delete_instance_profile(InstanceProfileName=name)
            try:
                pages = iam.get_paginator("list_role_policies").paginate(RoleName=name)
                for pname in [p for page in pages for p in page["PolicyNames"]]:
                    iam.delete_role_policy(RoleName=name, PolicyName=pname)
                attached = iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
                for arn in [p["PolicyArn"] for page in attached for p in page["AttachedPolicies"]]:
                    iam.detach_role_policy(RoleName=name, PolicyArn=arn)
                iam.delete_role(RoleName=name)
            except iam.exceptions.NoSuchEntityException:
                return

        self.session.call(f"delete role {name}", run)
