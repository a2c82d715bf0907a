"""Sentences that state a fact about a named party: what a libel lawyer reads first.

A sentence is flagged when it names a person or organisation and asserts something of it: it carries a
figure, a date or a quote, or a verb of fact ("has cut", "announced", "owns"), and it is not a question
or a guess ("could", "might") with nothing checkable in it.
"""

from __future__ import annotations

import re

from morris_mlx.review.flag import Flag
from morris_mlx.review.sentences import Sentence

_FACT_VERB = re.compile(
    r"\b(?:is|are|was|were|has|have|had|will|won't|did|didn't|does|doesn't|owns?|owned|employs?|employed|"
    r"plans?|planned|announced|announces|reported|reports|said|says|cut|cuts|raised|raises|spent|spends|"
    r"bought|buys|sold|sells|launched|launches|lost|loses|won|wins|hired|hires|fired|fires|signed|signs|"
    r"agreed|agrees|expects?|expected|invested|invests|paid|pays|made|makes|built|builds|promised|promises|"
    r"claimed|claims|admitted|admits|confirmed|confirms|denied|denies|revealed|reveals|posted|posts|recorded|"
    r"generated|earned|earns|charges|charged|operates|operated|serves|served|runs|ran|leads|led|owes|owed|"
    r"acquired|acquires|merged|closed|closes|opened|opens|slashed|slashes|axed|axes|dropped|drops|rose|rises|"
    r"fell|falls|grew|grows|shrank|shrinks|increased|increases|decreased|declined|declines|became|becomes|"
    r"remains|remained|abandoned|abandons|scrapped|scraps|delayed|delays|missed|misses|failed|fails|"
    r"pledged|pledges|warned|warns|insisted|insists|told|unveiled|unveils|struggled|struggles|"
    r"[a-z]{3,}ed)\b"
)
_HEDGE = re.compile(r"\b(?:could|might|may|would|should|perhaps|maybe|possibly|probably|presumably|if)\b", re.I)


def find_claims(text: str, sentences: list[Sentence], names: list[Flag], evidence: list[Flag]) -> list[Flag]:
    """`names` are the name flags; `evidence` the quotes, numbers and dates (a sentence holding one of
    them next to a name is a claim however it is phrased)."""
    flags = []
    for s in sentences:
        named = [n.text for n in names if s.start <= n.start < s.end]
        if not named or s.text.rstrip("*_ )\"'”’").endswith("?"):
            continue
        checkable = any(s.start <= e.start < s.end for e in evidence)
        factual = bool(_FACT_VERB.search(s.text))
        if checkable or (factual and not _HEDGE.search(s.text)):
            parties = ", ".join(dict.fromkeys(named))
            flags.append(Flag("claim", s.text, s.start, s.end, f"about {parties}: check it against a source"))
    return flags
