"""The review on the write screen, through Textual's pilot on the fake backend: an article is written,
its flagged spans are highlighted and listed, the person ticks items off, and Ctrl+S saves the article
with its attribution line and the checklist as ticked."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, Markdown, SelectionList, Static
from tui_fakes import FakeBackend, make_model_dir, record_notifications, svg_text, type_text, wait_until

from morris_mlx.review import review_text
from morris_mlx.review.flag import Flag
from morris_mlx.tui.app import create_app
from morris_mlx.tui.screens.save import SaveScreen
from morris_mlx.tui.screens.write import WriteScreen
from morris_mlx.tui.widgets.review_panel import STYLES, TICKED_STYLE, highlighted

SIZE = (160, 48)
PIECES = [
    "# Vodafone's gamble\n\n",
    "Vodafone said it would cut €2bn from its budget in 2025. ",
    '"We are not cutting jobs," said Margherita Della Valle, ',
    "the chief executive. What could possibly go wrong?",
]
TEXT = "".join(PIECES)


def make_app(tmp_path, backend: FakeBackend, **kw):
    return create_app(backend_factory=lambda name: backend, model_dir=make_model_dir(tmp_path), **kw)


async def write_and_review(pilot, topic: str) -> WriteScreen:
    screen = pilot.app.screen
    assert isinstance(screen, WriteScreen)
    screen.query_one("#topic", Input).focus()
    await type_text(pilot, topic)
    await pilot.press("enter")
    await wait_until(pilot, lambda: screen.review_flags is not None, what="the review")
    await pilot.pause()
    return screen


def test_generate_highlight_tick_and_save_the_checklist(tmp_path):
    app = make_app(tmp_path, FakeBackend(pieces=PIECES), writer="Iain Morris")
    target = tmp_path / "saved" / "vodafone.md"

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await write_and_review(pilot, "Vodafone")
            flags = screen.review_flags
            assert flags == review_text(TEXT.strip())  # the same checks as `morris review`
            kinds = {f.kind for f in flags}
            assert {"quote", "number", "date", "name", "claim"} <= kinds
            assert any(f.kind == "quote" and "Margherita Della Valle" in f.detail for f in flags)
            # The article now shows as text with the flagged spans highlighted, the checklist beside it.
            assert not screen.query_one("#article", Markdown).display
            assert screen.query_one("#article-review", Static).display
            panel = screen.query_one("#review-panel")
            assert panel.display
            checklist = screen.query_one("#review-list", SelectionList)
            assert checklist.option_count == len(flags)
            svg = app.export_screenshot()
            shown = svg_text(svg)
            assert f"{len(flags)} items to check before publishing" in shown
            assert "Margherita Della Valle" in shown and "€2bn" in shown
            assert STYLES["quote"].split()[-1] in svg and STYLES["number"].split()[-1] in svg  # highlights
            # Tick the first and the third item: Ctrl+T goes to the list, Space ticks.
            await pilot.press("ctrl+t")
            assert checklist.has_focus
            await pilot.pause()
            detail = str(screen.query_one("#review-detail").render())
            assert detail == flags[0].detail  # what to check about the item under the cursor
            await pilot.press("space", "down", "down", "space")
            await pilot.pause()
            assert checklist.selected == [0, 2]
            assert panel.ticked == [i in (0, 2) for i in range(len(flags))]
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, SaveScreen), what="save dialog")
            app.screen.query_one("#save-path", Input).value = str(target)
            await pilot.press("enter")
            await wait_until(pilot, lambda: target.exists(), what="saved file")
            assert any(f"saved to {target}" in m for m, _ in notes)

    asyncio.run(scenario())
    saved = target.read_text()
    article, _, rest = saved.partition("\n---\n")
    assert article.strip() == TEXT.strip()
    attribution, _, checklist = rest.strip().partition("\n\n")
    assert attribution.startswith("*AI-generated in the style of Iain Morris")
    assert checklist.startswith("## Review checklist")
    items = [line for line in checklist.splitlines() if line.startswith("- [")]
    assert len(items) == len(review_text(TEXT.strip()))
    assert [line.startswith("- [x]") for line in items] == [i in (0, 2) for i in range(len(items))]
    # The saved file reviews like the article alone: its footer and checklist are not flagged.
    assert review_text(saved) == review_text(TEXT.strip())


def test_saving_before_ticking_keeps_every_item_unticked_and_a_new_article_clears_the_review(tmp_path):
    backend = FakeBackend(pieces=PIECES)
    app = make_app(tmp_path, backend)
    target = tmp_path / "plain.md"

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            screen = await write_and_review(pilot, "Vodafone")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, SaveScreen), what="save dialog")
            app.screen.query_one("#save-path", Input).value = str(target)
            await pilot.press("enter")
            await wait_until(pilot, lambda: target.exists(), what="saved file")
            # A plain article with nothing to check: the old review goes, and the list says so.
            backend.pieces = ["Nothing much happened, and nobody minded at all."]
            screen.query_one("#topic", Input).value = ""
            await write_and_review(pilot, "calm")
            assert screen.review_flags == []
            assert screen.query_one("#review-list", SelectionList).option_count == 0
            assert not screen.query_one("#review-panel").display
            assert screen.query_one("#article", Markdown).display  # rendered as Markdown again
            assert "review: nothing flagged" in svg_text(app.export_screenshot())

    asyncio.run(scenario())
    lines = target.read_text().splitlines()
    assert any(line.startswith("- [ ]") for line in lines) and not any(line.startswith("- [x]") for line in lines)


def test_highlighting_styles_each_kind_dims_ticked_items_and_reverses_the_current_one():
    text = "Vodafone cut €2bn."
    flags = [Flag("name", "Vodafone", 0, 8), Flag("number", "€2bn", 13, 17)]
    plain = highlighted(text, flags)
    assert {(s.start, s.end, str(s.style)) for s in plain.spans} == {(0, 8, STYLES["name"]), (13, 17, STYLES["number"])}
    ticked = highlighted(text, flags, ticked=[True, False], current=1)
    styles = {(s.start, s.end, str(s.style)) for s in ticked.spans}
    assert (0, 8, TICKED_STYLE) in styles and (13, 17, "reverse") in styles
    assert plain.plain == text


def test_an_article_reopened_from_the_history_is_reviewed_too(tmp_path):
    from morris_mlx.tui.article import Article
    from morris_mlx.tui.history import History
    from morris_mlx.tui.screens.history import HistoryScreen

    History().add(Article(topic="vodafone", text=TEXT, model="m", adapter=None, backend="fake"))
    app = make_app(tmp_path, FakeBackend())

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await pilot.press("ctrl+r")
            await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
            await pilot.press("enter")
            await wait_until(pilot, lambda: screen.review_flags is not None, what="the review")
            assert screen.review_flags == review_text(TEXT.strip())
            assert screen.query_one("#review-panel").display

    asyncio.run(scenario())
