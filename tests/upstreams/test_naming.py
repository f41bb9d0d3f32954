"""Namespaced resource URIs: readable, reversible, and never shared by two upstreams."""

from __future__ import annotations

import pytest

from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.naming import namespaced_uri, split_uri

URIS = [
    "demo://resource/static/document/a.md",
    "demo://resource/dynamic/text/{resourceId}",
    "file:///etc/hosts",
    "https://example.test/x?y=1",
    "urn:isbn:0451450523",
    "demo://",
]


@pytest.mark.parametrize("uri", URIS)
def test_a_namespaced_uri_names_its_upstream_and_gives_back_the_upstream_uri(uri: str) -> None:
    exposed = namespaced_uri("everything", uri)
    assert split_uri(exposed) == ("everything", uri)


def test_the_upstream_name_becomes_the_first_path_segment() -> None:
    assert namespaced_uri("docs", "demo://a/b") == "demo://docs/a/b"
    assert namespaced_uri("docs", "urn:x") == "docs+urn:x"


def test_two_upstreams_never_share_a_uri() -> None:
    exposed = {namespaced_uri(name, uri) for name in ("a", "a-b", "b") for uri in URIS}
    assert len(exposed) == 3 * len(URIS)


def test_uris_that_name_no_upstream_are_not_split() -> None:
    assert split_uri("demo:///x") is None
    assert split_uri("plain") is None


def test_manifest_roots_become_file_uris() -> None:
    manifest = Manifest(name="x", command="x", roots=["/srv/project", "file:///data"])
    assert manifest.root_objects() == [
        {"uri": "file:///srv/project", "name": "project"},
        {"uri": "file:///data", "name": "data"},
    ]
