"""Widgets of the TUI that Textual does not ship: the model status bar and the loss chart."""
