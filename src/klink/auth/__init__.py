"""Bearer tokens with roles (reader < deployer < admin); deployers may be limited to envs."""
