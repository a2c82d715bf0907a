"""One article as every stage of `morris prepare` sees it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

KINDS = ("telecom", "general")


@dataclass(frozen=True)
class Article:
    id: str  # stable across runs: the corpus file stem, or the URL for scraped articles
    title: str
    standfirst: str
    topic: str
    kind: str  # "telecom" or "general"
    published: str
    text: str  # the body as read, before cleaning
    origin: str  # "file" or "file:line", for messages
    author: str = ""
    paragraphs: tuple[str, ...] = ()  # the body after cleaning
    removed: dict[str, int] = field(default_factory=dict)  # paragraphs dropped by cleaning, by reason

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)

    def cleaned(
        self, title: str, standfirst: str, topic: str, paragraphs: list[str], removed: dict[str, int]
    ) -> Article:
        return replace(
            self,
            title=title,
            standfirst=standfirst,
            topic=topic,
            paragraphs=tuple(paragraphs),
            removed=dict(removed),
        )
