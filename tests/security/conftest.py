"""Fixtures shared with the upstream tests (manifests for the misbehaving test upstreams)."""

from tests.upstreams.conftest import manifests_dir, write_manifest

__all__ = ["manifests_dir", "write_manifest"]
