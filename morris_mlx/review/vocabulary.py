"""Word lists the name check leans on: words that start sentences, capitalised words that are not people
or organisations (places, nationalities, technologies), and the cues that tell a person from a company.

Kept short and general on purpose: the name check also learns the ordinary words of the language from
the corpus (any word it sees in lower case is no name), so these lists only cover what that misses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Common words that begin sentences and headings; any of them capitalised is no name.
FUNCTION_WORDS = frozenset(
    """a about above after again against all almost along already also although always am among an and
    another any anybody anyone anything anyway are around as at away back be because been before behind
    being below beneath beside besides best better between beyond both but by can cannot could did do does
    doing done down during each either else enough even ever every everybody everyone everything except
    far few first for from further given had has have having he hence her here hers herself him himself his
    how however i if in indeed inside instead into is it its itself just last least less let like likely
    many may maybe me meanwhile might mine more moreover most much must my myself neither never
    nevertheless next no nobody none nor not nothing now of off often on once one only onto or other others
    otherwise our ours ourselves out over own perhaps please quite rather really same second several shall
    she should since so some somebody someone something sometimes soon still such than that the their
    theirs them themselves then there therefore these they this those though through thus to today together
    too toward towards under unless until up upon us very was we well were what whatever when whenever
    where whereas wherever whether which while who whoever whole whom whose why will with within without
    would yes yet you your yours yourself yourselves worse worst yesterday tomorrow tonight here's there's
    it's that's what's who's let's don't doesn't didn't can't won't isn't aren't wasn't weren't hasn't
    haven't hadn't wouldn't shouldn't couldn't i'm i've i'd i'll we're we've you're they're he's she's
    we'll you'll they'll he'll she'll it'll we'd you'd they'd he'd she'd they've you've who've would've
    could've should've lets
    oh ah alas sadly happily luckily clearly obviously frankly honestly surely naturally
    unfortunately fortunately ultimately finally firstly secondly thirdly lastly meanwhile nonetheless
    still worse better instead consider imagine remember think picture take look say tell ask note
    welcome enter cue step meet""".split()
)

# Capitalised words that are not people or organisations.
PLACES = frozenset(
    """Africa America Americas Antarctica Arctic Asia Atlantic Australia Austria Belgium Brazil Britain
    Bulgaria Canada Caribbean China Croatia Cyprus Czechia Denmark Egypt England Estonia Europe Finland
    France Germany Greece Hungary Iceland India Indonesia Iran Iraq Ireland Israel Italy Japan Kenya
    Korea Latvia Lithuania Luxembourg Malaysia Malta Mexico Netherlands Nigeria Norway Pacific Pakistan
    Philippines Poland Portugal Qatar Romania Russia Scotland Serbia Singapore Slovakia Slovenia Spain
    Sweden Switzerland Taiwan Thailand Turkey Ukraine Vietnam Wales Holland Scandinavia Nordics Balkans
    London Paris Berlin Madrid Rome Milan Munich Frankfurt Hamburg Brussels Amsterdam Rotterdam Vienna
    Stockholm Oslo Helsinki Copenhagen Dublin Edinburgh Glasgow Manchester Birmingham Leeds Liverpool
    Bristol Cardiff Belfast Lisbon Barcelona Warsaw Prague Budapest Athens Zurich Geneva Tokyo Beijing
    Shanghai Shenzhen Seoul Mumbai Delhi Bangalore Sydney Melbourne Toronto Vancouver Montreal Chicago
    Boston Seattle Dallas Texas California Florida Washington Virginia Silicon Valley Brooklyn Manhattan
    York Jersey Hollywood Westminster Whitehall Brussels Davos Barcelona Malaga Dubai Riyadh Johannesburg
    Bonn Cologne Dusseldorf Düsseldorf Lyon Marseille Turin Naples Seville Valencia Porto Gothenburg Espoo
    Lagos Nairobi Cairo Istanbul Moscow Kyiv Hong Kong Macau Bavaria Catalonia Flanders Wallonia Yorkshire
    Kent Surrey Cornwall Devon Somerset Essex Midlands Home Counties UK US USA EU UAE Middle Far East West
    North South Iran Iraq Syria Lebanon Jordan Saudi Arabia Emirates Argentina Chile Colombia Peru
    Venezuela Cuba Bangladesh""".split()
)
DEMONYMS = frozenset(
    """American Americans African Asian Australian Austrian Belgian Brazilian British Brit Brits Canadian
    Chinese Danish Dutch English Estonian European Europeans Finnish French German Germans Greek Indian
    Irish Israeli Italian Japanese Korean Mexican Nordic Norwegian Polish Portuguese Russian Scottish
    Spanish Swedish Swiss Turkish Ukrainian Welsh Western Eastern Northern Southern Scandinavian
    Californian Texan Londoner Londoners Parisian Bavarian Catalan Flemish Arab Arabic Latin Anglo
    Silicon Gulf Baltic Mediterranean Orwellian Victorian Edwardian Dickensian Kafkaesque Shakespearean
    Darwinian Faustian Sisyphean Herculean Pyrrhic Promethean Byzantine Biblical Christian Christians
    Catholic Protestant Muslim Jewish Hindu Buddhist Marxist Thatcherite Keynesian Brexit Brexiteers
    Iranian Iraqi Saudi Emirati Egyptian Nigerian Kenyan Pakistani Bangladeshi Indonesian Malaysian Thai
    Vietnamese Filipino Singaporean Taiwanese Argentinian Chilean Colombian Peruvian Venezuelan Cuban
    Hungarian Romanian Bulgarian Czech Slovak Croatian Serbian Slovenian Lithuanian Latvian Icelandic
    Islamic Asian-American African-American""".split()
)
# Technologies, titles and other capitalised terms of the trade that name nobody.
TERMS = frozenset(
    """AI AGI ML LLM LLMs GPU GPUs CPU CPUs TPU RAN RANs vRAN vRANs O-RAN Open Cloud Edge 2G 3G 4G 5G 6G LTE
    VoLTE NR SA NSA SIM eSIM eSIMs IoT API APIs SDK SaaS PaaS IaaS NFV SDN MEC URLLC eMBB mMTC FWA FTTP FTTH
    FTTC DSL ADSL VDSL ISP ISPs SMS MMS OTT TV IPTV HD 4K IT ICT CIO CEO CEOs CFO CFOs CTO CTOs COO COOs CMO
    CSO VP SVP EVP MD HR PR IPO IPOs M&A B2B B2C KPI KPIs ROI ARPU EBITDA EBIT GDP VAT PhD MBA PC PCs OK
    UTC GMT AM PM Wi-Fi WiFi WiMAX Bluetooth Internet Web Metaverse Cloud Blockchain Bitcoin NFT NFTs
    Ethernet Linux Android iOS Windows Mac iPhone iPad iPhones Kubernetes DOCSIS GPON XGS-PON PON MIMO
    mmWave C-band CBRS Ku Ka LEO GEO MEO D2D NTN RAN-as-a-service CapEx OpEx Capex Opex OSS BSS CRM
    Tier Level Phase Act Part Chapter Article Section Clause Schedule Annex Release Version Series Mark Model
    Gen Pro Plus Max Mini Lite Ultra Prime Premium Standard Basic Gold Silver Platinum Bronze Club
    Mr Mrs Ms Dr Sir Dame Lord Lady Professor Prof Chief Executive Officer Officers Chairman Chairwoman
    President Vice Minister Secretary Commissioner Director General Senator Governor Mayor King Queen
    Prince Princess Pope Saint St Christmas Easter Ramadan Halloween Olympics Olympic World Cup Premier
    League Champions God Heaven Hell Earth Moon Mars Sun Venus Jupiter Titanic Armageddon Apocalypse
    Frankenstein Dracula Godot Camelot Atlantis Utopia Eden Babel Pandora Trojan Horse Faustian
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July
    August September October November December Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec
    DDoS VPN VPNs CDN CDNs DNS SaaS HTTP HTTPS URL URLs PDF Q1 Q2 Q3 Q4 H1 H2 FY I Mbps Gbps Kbps Tbps GHz MHz kHz THz Hz GB TB MB PB EB kW MW GW kWh MWh GWh TWh
    dB dBm""".split()
)
NOT_NAMES = PLACES | DEMONYMS | TERMS

# The last word of an organisation's name, or a word inside one.
ORG_WORDS = frozenset(
    """Group Holdings Holding Inc Inc. Ltd Ltd. Limited plc PLC Corp Corp. Corporation Company Co Co.
    LLC LLP AG SA SE NV BV GmbH AB ASA Oyj SpA Telecom Telekom Telecommunications Telecoms Telco Telefonica
    Telefónica Communications Networks Network Mobile Wireless Broadband Cable Fibre Fiber Towers Tower
    Systems Technologies Technology Tech Labs Software Semiconductor Semiconductors Electronics Bank
    Banking Capital Partners Ventures Investments Investment Fund Funds Equity Securities Insurance Airways
    Airlines Airline Rail Railways Energy Water Motors Media News Times Post Journal Reading Review
    Research Analytics Consulting Consultancy Associates Institute Institution University College School
    Foundation Trust Council Commission Committee Authority Agency Ministry Department Office Bureau
    Board Parliament Congress Senate Court Tribunal Government Treasury Police Service Services Alliance
    Association Federation Union Forum Consortium Society League Club Party Organisation Organization
    Exchange Markets Market Studios Pictures Records Foods Stores Retail Port Airport Hospital Church
    Museum Library Agency""".split()
)
PERSON_TITLES = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Professor|Sir|Dame|Lord|Lady|Baroness|Senator|President|Minister|"
    r"Commissioner|chief executive|chief executive officer|chief financial officer|chief technology officer|"
    r"chief operating officer|chief|CEO|CFO|CTO|COO|boss|chairman|chairwoman|chair|founder|co-founder|"
    r"president|analyst|spokesperson|spokesman|spokeswoman|executive|director|head|minister|secretary|"
    r"economist|professor|researcher|engineer|partner|principal|managing director|vice president|"
    r"VP|SVP|EVP|commissioner|regulator|lawyer|investor|journalist|columnist|writer|author|politician|"
    r"MP|MEP|senator|governor|mayor)\.?,?\s+(?:of\s+\S+\s+)?)$"
)
PERSON_FOLLOWERS = re.compile(
    r"^\s*,\s+(?:the|a|an|its|his|her|their|our)?\s*(?:[\w'’-]+\s+){0,3}?"
    r"(?:chief|CEO|CFO|CTO|COO|boss|chairman|chairwoman|chair|founder|president|analyst|spokesperson|"
    r"spokesman|spokeswoman|executive|director|head|minister|secretary|economist|professor|partner|"
    r"vice president|commissioner|lawyer|investor|journalist|politician)\b"
    r"|^\s+(?:said|says|told|added|argued|insisted|claimed|explained|warned|noted|wrote|admitted|believes|"
    r"thinks|reckons|recalled|joked|quipped|replied|himself|herself)\b"
)


_NUMBER_WORD = re.compile(
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
    r"|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand)"
    r"(?:-(?:one|two|three|four|five|six|seven|eight|nine))?"
)


def is_not_a_name(word: str) -> bool:
    """A place, nationality or term of the trade, a hyphenated pair of them ("British-American"), or a
    number written out ("Sixty-four")."""
    if word in NOT_NAMES or _NUMBER_WORD.fullmatch(word.lower()):
        return True
    parts = word.split("-")
    return len(parts) > 1 and all(p in NOT_NAMES for p in parts)


def lowercase_words(texts: Iterable[str]) -> frozenset[str]:
    """Every word that appears in lower case somewhere in `texts`: ordinary words, never names."""
    found: set[str] = set()
    for text in texts:
        found.update(w.replace("\u2019", "'") for w in re.findall(r"\b[a-z][a-z'’-]*\b", text))
    return frozenset(found)


def is_common_word(word: str, vocabulary: frozenset[str]) -> bool:
    """True for an ordinary English word (in any case): a function word or one seen in lower case."""
    lower = word.lower().replace("\u2019", "'")
    if lower in FUNCTION_WORDS or lower in vocabulary:
        return True
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""),
                         ("ing", "e"), ("ly", ""), ("'s", "")):
        if lower.endswith(suffix) and len(lower) - len(suffix) >= 3:
            base = lower[: len(lower) - len(suffix)] + repl
            if base in vocabulary or base in FUNCTION_WORDS:
                return True
    return False
