"""``initlab playground``: serve the interactive page and open it in the browser."""

from __future__ import annotations

import sys

import typer

from initlab.cli._app import app, fail


@app.command("playground")
def playground_command(
    port: int = typer.Option(8765, min=0, max=65535, help="Port to serve on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback exposes the page."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the URL without opening a browser."),
    threads: int = typer.Option(1, min=1, help="torch threads for the training (1 suits small networks)."),
) -> None:
    """Train up to four initializations of one network side by side in a local page (Ctrl-C stops it)."""
    try:
        from initlab.playground.server import serve
    except ImportError as exc:
        raise fail(f"the playground needs starlette and uvicorn: {exc}") from None

    def ready(url: str) -> None:
        typer.echo(f"initlab playground at {url}  (Ctrl-C stops it)")
        sys.stdout.flush()  # a pipe (a test, a script) must see the URL now, not when the buffer fills
        if not no_browser:
            import webbrowser

            webbrowser.open(url)

    try:
        serve(host, port, on_ready=ready, threads=threads)
    except OSError as exc:
        raise fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass
