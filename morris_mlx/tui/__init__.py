"""`morris tui`: the Textual terminal UI. Build it with `morris_mlx.tui.app.create_app`."""
