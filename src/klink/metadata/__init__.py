"""The metadata service: the one canonical list of applications and environments."""
