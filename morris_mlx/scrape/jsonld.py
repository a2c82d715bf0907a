"""schema.org JSON-LD: the article metadata most news sites embed for search engines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from bs4 import BeautifulSoup

ARTICLE_TYPES = {
    "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle", "opinionnewsarticle",
    "backgroundnewsarticle", "reviewnewsarticle", "blogposting", "techarticle", "report", "liveblogposting",
}


def _loads(text: str) -> Any:
    # Hand-written JSON-LD is often sloppy: raw newlines in strings (strict=False), HTML comment or CDATA
    # wrappers, trailing commas. Try the forgiving repairs before giving up on the block.
    text = re.sub(r"^\s*(<!--|/\*\s*<!\[CDATA\[\s*\*/)|(-->|/\*\s*\]\]>\s*\*/)\s*$", "", text.strip())
    try:
        return json.loads(text, strict=False)
    except ValueError:
        pass
    try:
        return json.loads(re.sub(r",\s*([}\]])", r"\1", text), strict=False)
    except ValueError:
        return None


def _flatten(node: Any, depth: int = 0) -> Iterator[dict]:
    if depth > 6:
        return
    if isinstance(node, list):
        for item in node:
            yield from _flatten(item, depth + 1)
    elif isinstance(node, dict):
        yield node
        for key in ("@graph", "mainEntity", "mainEntityOfPage", "itemListElement"):
            if isinstance(node.get(key), (dict, list)):
                yield from _flatten(node[key], depth + 1)


def jsonld_objects(soup: BeautifulSoup) -> list[dict]:
    """Every JSON object in the page's ld+json blocks, @graph members and main entities included."""
    objects: list[dict] = []
    for script in soup.find_all("script", attrs={"type": re.compile(r"ld\+json", re.I)}):
        data = _loads(script.string or script.get_text() or "")
        objects.extend(_flatten(data))
    return objects


def types_of(obj: dict) -> set[str]:
    kind = obj.get("@type", [])
    kinds = kind if isinstance(kind, list) else [kind]
    return {str(k).rsplit("/", 1)[-1].lower() for k in kinds}


def find_article(objects: list[dict]) -> dict | None:
    """The page's article object, preferring one that carries its body text."""
    articles = [o for o in objects if types_of(o) & ARTICLE_TYPES]
    with_body = [o for o in articles if isinstance(o.get("articleBody"), str) and o["articleBody"].strip()]
    return (with_body or articles or [None])[0]


def person_names(value: Any) -> list[str]:
    """Names from an `author` value: a string, a Person/Organization object, or a list of them."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, dict):
        name = value.get("name")
        return person_names(name) if name is not None else []
    if isinstance(value, list):
        return [n for item in value for n in person_names(item)]
    return []


def text_value(value: Any) -> str | None:
    """A plain string from a schema.org value that may be a string, a list or an object with @value."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and value:
        return text_value(value[0])
    if isinstance(value, dict):
        return text_value(value.get("@value") or value.get("name"))
    return None


def _item_url(item: Any) -> str | None:
    """The page a list entry points at: a URL string, a ListItem's `url` or `item`, an article's `url`."""
    if isinstance(item, str):
        return item.strip() or None
    if not isinstance(item, dict):
        return None
    for key in ("url", "item", "mainEntityOfPage", "@id"):
        value = item.get(key)
        found = _item_url(value) if isinstance(value, (str, dict)) else None
        if found and (key != "@id" or found.startswith(("http://", "https://", "/"))):
            return found
    return None


def listed_urls(objects: list[dict]) -> list[str]:
    """Article URLs a listing page declares in an ItemList or CollectionPage (as written, in order).

    BreadcrumbList is its own type, so a page's breadcrumbs never come back as articles.
    """
    urls: list[str] = []
    for obj in objects:
        kinds = types_of(obj)
        entries: list[Any] = []
        if "itemlist" in kinds:
            elements = obj.get("itemListElement")
            entries.extend(elements if isinstance(elements, list) else [elements])
        if "collectionpage" in kinds:
            for key in ("hasPart", "mainEntity"):
                parts = obj.get(key)
                for part in parts if isinstance(parts, list) else [parts]:
                    if isinstance(part, dict) and types_of(part) & ARTICLE_TYPES:
                        entries.append(part)
        for entry in entries:
            url = _item_url(entry)
            if url and url not in urls:
                urls.append(url)
    return urls
