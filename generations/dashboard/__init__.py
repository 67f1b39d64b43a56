"""The dashboard: server-rendered pages, with HTMX fragments (named partials) for live parts.

Every hx-get/hx-post has a working href/action too: the pages work without JavaScript."""
