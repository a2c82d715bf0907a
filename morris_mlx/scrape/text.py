"""Turning an HTML container into clean paragraphs: boilerplate out, paragraph breaks kept."""

from __future__ import annotations

import re
from collections.abc import Iterable

from bs4 import BeautifulSoup, Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

# Never text: removed from the whole page before any body is looked for.
PAGE_JUNK_TAGS = ("script", "style", "noscript", "template", "iframe", "svg", "canvas", "nav", "aside",
                  "dialog", "object", "embed", "video", "audio", "map")
# Parts of an article container that are not the article's prose.
CONTAINER_JUNK_TAGS = ("header", "footer", "form", "button", "figcaption", "select", "input", "textarea",
                       "label", "h1")
# class/id words that mark share bars, related links, newsletter boxes, captions, ads and the like.
_JUNK_WORD = re.compile(
    r"(?:^|[-_ ])(share|sharing|sharebar|social|related|newsletter|subscribe|subscription|signup|sign-up|"
    r"promo|promotion|advert|advertisement|ads?|ad-slot|sponsor|sponsored|cookie|consent|comments?|"
    r"caption|credit|breadcrumbs?|tags|taglist|sidebar|recommended|recommendations|popular|trending|"
    r"most-read|paywall|popup|modal|disclaimer|author-bio|authorbio|bio|byline|toolbar|print|"
    r"read-more|readmore|more-stories|outbrain|taboola)(?:$|[-_ ])",
    re.I,
)
# Whole paragraphs that are furniture rather than prose.
_JUNK_PARAGRAPH = [
    re.compile(p, re.I)
    for p in (
        r"^(related( stories| articles| content| reading| posts)?|read more|see also|also read|more from|"
        r"recommended( reading)?)\s*[:\-\u2013\u2014].{0,200}$",
        r"^(you may also like|you might also like|more stories|recommended for you)\W{0,3}$",
        r"^\(?(source|image|photo|picture|credit|illustration)s?\s*:.{0,200}\)?$",
        r"^(sign up|subscribe)\b.{0,200}$",
        r"^.{0,80}\b(newsletter|subscribe now|sign up for)\b.{0,80}$",
        r"^(share|share this|share on|tweet|email|print|advertisement|advert|comments?)\W{0,3}$",
        r"^(click here|follow us)\b.{0,200}$",
        r"^\W*$",
    )
]
BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "blockquote", "pre", "ul", "ol", "li", "dl", "dt", "dd",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "td", "th", "figure", "hr", "address", "center",
}
_SKIP_NODES = (Comment, Declaration, Doctype, ProcessingInstruction)


def remove_page_junk(soup: BeautifulSoup) -> None:
    """Drop scripts, navigation, sidebars and comments from the whole page."""
    for tag in soup.find_all(PAGE_JUNK_TAGS):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()


def remove_selected(soup: BeautifulSoup, selectors: Iterable[str]) -> None:
    """Drop whatever a profile's `remove` selectors match."""
    for selector in selectors:
        for tag in soup.select(selector):
            tag.decompose()


def inside_junk(tag: Tag) -> bool:
    """Whether `tag` sits in a related-stories box, sidebar, promo and the like (a byline found there
    belongs to another article). Page-wide wrappers are ignored: <body class="has-sidebar"> says nothing."""
    return any(
        parent.name not in ("html", "body", "main", "article", "[document]") and _is_junk_element(parent)
        for parent in tag.parents
    )


def _is_junk_element(tag: Tag) -> bool:
    return junk_word(tag) is not None


def junk_word(tag: Tag) -> str | None:
    """The class/id/role word that marks `tag` as a share bar, related box, sidebar, ad and so on
    ('hidden' for an element hidden from readers), or None for an ordinary element."""
    if tag.get("aria-hidden") == "true" or tag.has_attr("hidden"):
        return "hidden"
    words = " ".join([*(tag.get("class") or []), str(tag.get("id") or ""), str(tag.get("role") or "")])
    found = _JUNK_WORD.search(words) if words.strip() else None
    return found.group(1).lower() if found else None


def remove_container_junk(container: Tag) -> None:
    """Strip headers, captions, share bars, related links and newsletter boxes inside `container`."""
    for tag in container.find_all(CONTAINER_JUNK_TAGS):
        tag.decompose()
    remove_junk_elements(container)


def remove_junk_elements(container: Tag) -> None:
    """Strip elements whose class/id marks them as share bars, related links, ads, captions and so on."""
    total = len(container.get_text(" ", strip=True))
    for tag in list(container.find_all(True)):
        # find_all returned a snapshot; elements inside an already removed one are marked decomposed.
        if tag.decomposed or not _is_junk_element(tag):
            continue
        # A wrapper called e.g. "body-with-sidebar" that holds most of the text is the article, not junk.
        if len(tag.get_text(" ", strip=True)) > 0.5 * total:
            continue
        tag.decompose()


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace (non-breaking and zero-width spaces included) within each line."""
    text = text.replace("\u00a0", " ").replace("\u200b", "").replace("\ufeff", "")
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def is_junk_paragraph(text: str, extra: Iterable[re.Pattern] = ()) -> bool:
    return any(p.search(text) for p in (*_JUNK_PARAGRAPH, *extra))


def paragraphs(container: Tag) -> list[str]:
    """The container's text as paragraphs: one per block element, two <br> in a row also break.

    Walks the tree with an explicit stack: malformed pages can nest thousands of unclosed tags deep.
    """
    out: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        text = normalize_space("".join(buffer))
        buffer.clear()
        if text.strip("- "):
            out.append(text)

    stack: list[tuple[Iterable, bool]] = [(iter(container.children), False)]
    while stack:
        children, is_block = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if is_block:
                flush()
            continue
        if isinstance(child, _SKIP_NODES):
            continue
        if isinstance(child, NavigableString):
            buffer.append(str(child).replace("\n", " "))
            continue
        if not isinstance(child, Tag):
            continue
        if child.name == "br":
            if buffer and buffer[-1] == "\n":
                buffer.pop()
                flush()
            else:
                buffer.append("\n")
            continue
        block = child.name in BLOCK_TAGS
        if block:
            flush()
            if child.name == "li":
                buffer.append("- ")
        stack.append((iter(child.children), block))
    flush()
    return out


def clean_paragraphs(
    paras: Iterable[str], drop: Iterable[str] = (), extra_junk: Iterable[re.Pattern] = ()
) -> list[str]:
    """Drop furniture paragraphs, repeats of the title/standfirst and exact duplicates, keeping order."""
    dropped = {normalize_space(d).casefold() for d in drop if d}
    seen: set[str] = set()
    kept = []
    for para in paras:
        key = para.casefold()
        if key in dropped or key in seen or is_junk_paragraph(para, extra_junk):
            continue
        seen.add(key)
        kept.append(para)
    return kept


def word_count(paras: Iterable[str]) -> int:
    return sum(len(p.split()) for p in paras)
