"""Bake: base images and service images, natively on the local provider, with Packer on AWS."""
