"""Catalog mode and client profiles.

A profile is one client's view of the catalog: which tools exist for it (include/exclude
globs), how they are listed (`full`, `menu` of three meta-tools, or `hybrid`: the menu plus
pinned tools) and in whose words (title/description overrides). `view.CatalogView` is a
FastMCP transform that applies the caller's profile to every listing and lookup, so a tool
outside the profile is unknown to that caller on every path; `meta_tools` builds
`archon_search_tools`, `archon_describe_tool` and `archon_call_tool`; `search_index` is the
incremental BM25 index behind search; `http_profiles` selects the profile from the HTTP path
(`/mcp/{profile}`) and keeps a principal bound to a profile inside it.
"""
