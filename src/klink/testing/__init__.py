"""Fakes, in one place: test doubles for what cannot run for real here. Each says it is a fake."""
