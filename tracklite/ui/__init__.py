"""tracklite's page: ``tracklite report`` (one self-contained HTML file) and ``tracklite ui``
(a local, read-only, token-protected server). The charts need the ``tracklite[ui]`` extra."""
