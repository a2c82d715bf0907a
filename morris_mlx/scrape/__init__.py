"""Collect a writer's public articles into raw JSONL, politely and resumably.

Network code and parsing code are kept apart so the parsers stay pure functions on bytes and strings:

- fetching: `fetch` (HTTP with retries, politeness, caps), `robots`, `cache` (pages on disk), `urls`
- parsing: `extract` (one article page), `discover` (listing pages), `links` (which of a listing's links
  are articles, and why), `feeds` (RSS/Atom/sitemaps), with `text`, `jsonld`, `byline` and `dates` as
  their helpers
- explaining: `explain` (`morris scrape --explain`: every link of a listing page with its verdict)
- running: `profile` (sites as data), `store` (output JSONL and resume state), `crawl` (the loop),
  `report` (progress bar and summary)
"""
