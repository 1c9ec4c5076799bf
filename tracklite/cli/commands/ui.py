"""``tracklite ui``: a local, read-only web page over the store, updated live."""

from __future__ import annotations

import argparse

from ..context import Context
from .common import Parents, SubParsers, add_command

EPILOG = """\
examples:
  tracklite ui
  tracklite ui --port 8765
  ssh -L 8765:127.0.0.1:8765 login-node   # then open the printed URL on your laptop

The server binds 127.0.0.1 unless --host says otherwise, and answers only requests that carry
the random token of the URL it prints. It never writes to the store and never unpickles.
Needs the extra: pip install "tracklite[ui]".
"""


def register(sub: SubParsers, parents: Parents) -> None:
    parser = add_command(
        sub,
        parents,
        "ui",
        ui,
        "serve a read-only web page over the store (local, token-protected)",
        description="A live page over the store.\n\n" + EPILOG,
        tabular=False,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)"
    )


def ui(ctx: Context, args: argparse.Namespace) -> int:
    from ...ui.server import serve

    catalog = ctx.existing_catalog()
    server = serve(str(catalog.root), args.host, args.port)
    ctx.print(f"tracklite ui over {catalog.root}")
    ctx.print(f"open {server.url}")
    ctx.out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        ctx.note("stopped")
    finally:
        server.server_close()
    return 0
