"""waikan's own boilerplate rules, applied after trafilatura.

trafilatura is tuned for generic web pages; news pages carry furniture it
keeps: the wire dateline before the first sentence, trailer lines
("Reporting by …; Editing by …", "Our Standards: …"), advertisement
markers, newsletter and app pitches, bylines, contact lines, embedded
tweets and "Read more" link blocks. SPEC §1 counts words without them, so
they go here, by rules that hold across outlets (no site-specific
selectors). Every rule is bounded by a word count: furniture is short, and
a long paragraph that happens to match is kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from waikan.extract.body import Block

_DASH = r"(?:-{1,2}|—|–|‒|―)"
_AGENCY = (
    r"(?:Reuters|AP|AFP|UPI|Bloomberg|dpa|DPA|CNN|IANS|PTI|ANI|Xinhua|Kyodo|Yonhap"
    r"|BBC|TASS|Interfax|EFE|ANSA|NPR|AAP|CP|The Canadian Press|Associated Press"
    r"|Bernama|Anadolu|SPA|WAFA|Sputnik|CNBC|MarketWatch|Dow Jones|Variety|AP Photo)"
)
_PLACE_CAPS = r"[A-Z][A-Z.'’&/\- ]{1,40}[A-Z.]"
_PLACE_ANY = r"[A-Z][\w.'’&/\- ]{1,40}"
_DATE_ETC = r"(?:,\s*[^()\n.!?;:]{1,40}?(?:\.[^()\n!?;:]{0,20}?)?)?"
# "WASHINGTON, Oct 27 (Reuters) - ", "NAIROBI, Kenya (AP) — ", "LONDON (Reuters) -"
_WIRE_DATELINE = re.compile(
    rf"^(?:{_PLACE_ANY}{_DATE_ETC}\s*)?\({_AGENCY}(?:/[^)]{{1,30}})?\)\s*{_DASH}\s*"
)
# "ATLANTA -- ", "NEW YORK, Dec. 4 — ", "TEHRAN- ": no agency, so the place must be in capitals
_CAPS_DATELINE = re.compile(rf"^{_PLACE_CAPS}{_DATE_ETC}\s*{_DASH}\s+(?=[A-Z0-9“\"'‘])")

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"

# (max words, pattern matched against the whole paragraph, case-insensitive)
_RULES: tuple[tuple[int, str], ...] = (
    # wire trailers
    (80, r"\(?(?:additional\s+)?(?:reporting|writing|editing|compiled|research|fact[- ]checking"
         r"|graphics|production)\s+by\b.*"),
    (30, r"our\s+standards\b.*|the\s+thomson\s+reuters\s+trust\s+principles\.?"),
    (8, r"sign\s+up\s+here\.?|purchase\s+licensing\s+rights\.?|all\s+rights\s+reserved\.?"),
    (90, r"item\s+\d+\s+of\s+\d+\b.*"),
    (40, r"(?:(?:the\s+)?associated\s+press|ap)\s+(?:writers?|reporters?|journalists?"
         r"|correspondents?)\b.*\bcontributed\b.*"),
    (40, r".*\bcontributed\s+(?:reporting|to\s+this\s+(?:report|story|article))\b.*"),
    (60, r"(?:the\s+)?(?:associated\s+press|ap)\s+receives\s+support\b.*"),
    (30, r"(?:contributing|source|sources|filed\s+under|tags?|topics?|includes\s+(?:information|"
         r"reporting)\s+from|with\s+(?:files|reporting)\s+from)\s*:.*"),
    (8, _DASH + r"\s*[\w .&'’-]+"),  # "—Field Level Media": a sign-off
    (40, r"(?:©|\(c\)|copyright\b).*"),
    # advertisement and page furniture
    (6, r"(?:story\s+continues\s+below\s+)?(?:advertisement|advertising|sponsored(?:\s+content)?"
        r"|ad)\.?|comments?|share(?:\s+this)?(?:\s+(?:article|story))?|print|e-?mail|tweet"
        r"|skip\s+(?:to\s+)?(?:content|ad|advert)|\[?watch\]?|video|gallery|(?:show|load|read)\s+more"
        r"|continue\s+reading\.?|cheat\s+sheet|top\s+\d+\s+right\s+now|you\s+may\s+also\s+like\.*"),
    (50, r"(?:read\s+more|continue\s+reading|related|see\s+also|see\s+more|more\s+on\s+this|more"
         r"|recommended|also\s+read|read\s+also|read\s+next|don'?t\s+miss|must\s+read"
         r"|required\s+reading|related\s+(?:post|article|story|video|coverage|content))\b\s*"
         r"[:|»›>—-].*"),
    (30, r"\[(?:related|read\s+more|see\s+also|also\s+read)\b.*\]"),
    (25, r"most\s+(?:read|popular|viewed|shared)\b.*"),
    (14, r"(?:\d+|one|two|three|four|five|ten)\s*(?:-|\s)?(?:min(?:ute)?s?|minutos?)\s+"
         r"(?:read|de\s+leitura)"
         r"|(?:reading|read|estimated\s+reading)\s+time\s*:?.*|tempo\s+de\s+leitura\s*:?.*"),
    # newsletters, subscriptions, apps
    (45, r".*\bnewsletters?\b.*\b(?:sign\s*up|subscrib\w*|inbox|delivered|get|join|register)\b.*"
         r"|.*\b(?:sign\s*up|subscrib\w*|get|join)\b.*\bnewsletters?\b.*"),
    (40, r".*\b(?:delivered|straight|right)\s+(?:to|in)\s+your\s+inbox\b.*"),
    (30, r"(?:install|download|get)\s+the\s+[\w .&'’-]{1,40}\s+app\b.*"
         r"|be\s+the\s+first\s+to\s+get\s+breaking\s+news\.?"),
    (40, r"(?:not\s+a\s+subscriber|already\s+a\s+subscriber|subscribe\s+(?:now|today|here)"
         r"|click\s+here\s+to\s+subscribe|become\s+a\s+(?:member|subscriber))\b.*"),
    (30, r"(?:click|tap)\s+here\b.*"),
    (25, r"(?:like\s+this\s+(?:story|article)|tell\s+us\s+what\s+you\s+think"
         r"|have\s+a\s+(?:news\s+)?tip"
         r"|send\s+us\s+your|share\s+(?:this|your)\s+(?:story|article|thoughts))\b.*"),
    # social and contact lines
    (40, r".*\bfollow\s+(?:us|him|her|them|@\w+|[\w.'’-]+(?:\s+[\w.'’-]+){0,3})\s+on\s+"
         r"(?:twitter|x|"
         r"facebook|instagram|threads|linkedin|bluesky|tiktok|youtube)\b.*"),
    (60, r".*\b(?:can|may)\s+be\s+reached\s+at\b.*|(?:contact|email|e-mail|reach)\s+(?:the\s+)?"
         r"(?:reporter|writer|author|us|[\w.'’-]+(?:\s+[\w.'’-]+){0,3})\s+(?:at|on|via)\b.*"),
    (60, r".*\b" + _EMAIL + r"\b.*"),
    (4, r"(?:https?://|www\.|twitter\.com/|@)\S+"),
    # photo credits printed as paragraphs
    (20, r"\(?(?:photos?|images?|pictures?)(?:\s+credit)?"
         r"\s*(?::|by\b|courtesy\b).*|(?:submitted|file|stock|contributed)\s+(?:photo|image)\.?"
         r"|(?:gallery|photo|image)\s+credit\s*:.*"),
    # bare dates and times: the page's dateline block, not the story
    (12, r"(?:(?:updated|published|posted|last\s+updated)\s*(?:on|at|:)?\s*)?"
         r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
         r"(?:" + _MONTH + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}|\d{1,2}\s+" + _MONTH
         + r",?\s+\d{4}|\d{1,2}/\d{1,2}/\d{2,4})"
         r"(?:[\s,@|–—-]+(?:at\s+)?[\w:./]+(?:\s*[ap]\.?m\.?)?){0,6}\s*"
         r"(?:\bby\s+[\w .'’-]{1,40})?"),
)
_TRAILER = tuple((n, re.compile(p, re.I | re.S)) for n, p in _RULES)
_BYLINE = re.compile(
    r"^(?i:by|written\s+by|words\s+by|reporting\s+by)\s+"
    r"[A-Z][\w.'’\-]+(?:\s+(?:[A-Z][\w.'’\-]+|and|&|,|de|van|von|da|del|la|le|bin))*"
    r"(?:\s*[,|/–—-]\s*[\w .'’&-]{0,60})?$",
)
_RELATED_HEAD = re.compile(
    r"^(?:related(?:\s+(?:stories|articles|content|coverage|news|reading|links|posts|videos?))?"
    r"|read\s+more|more\s+(?:from|on|stories|news|coverage|to\s+read)\b.{0,40}"
    r"|you\s+(?:may|might)\s+(?:also\s+)?(?:like|enjoy|be\s+interested\s+in)"
    r"|recommended(?:\s+(?:stories|reading|for\s+you|videos?))?|most\s+(?:read|popular|viewed)\b.{0,30}"
    r"|(?:top|trending|latest|popular|editor'?s?)\s+(?:stories|news|picks|posts|videos)"
    r"|further\s+reading|what\s+to\s+read\s+next|don'?t\s+miss|also\s+on\s+\w+"
    r"|explore\s+more|sign\s+up|newsletter|see\s+more|watch\s+more|more|up\s+next)[\s:.!?]*$",
    re.I,
)
_LETTER = re.compile(r"[^\W\d_]")
# Under a "Related" heading, paragraphs this short are teasers too.
_TEASER_WORDS = 20
# Author bios: a paragraph this short among the last few that opens with the author's name.
_BIO_TAIL = 3
_BIO_WORDS = 80
_BIO_VERB = (
    r"(?:is|was|has|had|writes|wrote|covers|covered|makes|reports|lives|joined|spent|previously"
    r"|most\s+recent|latest|new\s+book|book)\b"
)
# Data-table rows stay only when the page has little else (a results table is the story).
_TABLE_PAGE_WORDS = 150


def strip_dateline(text: str) -> str:
    """Remove a leading wire dateline; the sentence after it starts the paragraph."""
    for rule in (_WIRE_DATELINE, _CAPS_DATELINE):
        m = rule.match(text)
        if m and len(text) > m.end():
            return text[m.end() :]
    return text


def is_furniture(text: str) -> bool:
    """True for a trailer, pitch, credit, contact or dateline-only paragraph."""
    n = len(text.split())
    if not _LETTER.search(text):
        return True
    for max_words, rule in _TRAILER:
        if n <= max_words and rule.fullmatch(text):
            return True
    return n <= 12 and _BYLINE.match(text) is not None


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _is_related_head(block: Block) -> bool:
    return len(block.text.split()) <= 8 and _RELATED_HEAD.match(block.text) is not None


def clean_blocks(
    blocks: Sequence[Block], *, title: str | None = None, authors: Sequence[str] = ()
) -> list[Block]:
    """Drop furniture around and inside the article body (see the module doc)."""
    prose = sum(len(b.text.split()) for b in blocks if b.kind != "row")
    keep_rows = prose < _TABLE_PAGE_WORDS
    out: list[Block] = []
    in_related = False
    title_key = _norm(title) if title else None
    for block in blocks:
        if _is_related_head(block):
            in_related = True
            continue
        if in_related and (block.kind == "li" or len(block.text.split()) < _TEASER_WORDS):
            continue
        in_related = False
        if block.kind == "row" and not keep_rows:
            continue
        if not out and block.kind == "h" and title_key and _norm(block.text) == title_key:
            continue  # the headline is a field of its own, not body
        if is_furniture(block.text):
            continue
        out.append(block)
    _drop_author_bio(out, authors)
    _drop_trailing_headings(out)
    return _strip_lead(out)


def _drop_author_bio(blocks: list[Block], authors: Sequence[str]) -> None:
    """An author bio at the foot of the story ("Jane Roe is a senior editor at …")."""
    names: set[str] = set()
    for author in authors:
        parts = author.split()
        if len(parts) >= 2 and parts[0][:1].isupper():
            names.add(re.escape(author))
            if len(parts[0].strip(".")) > 2 and parts[0].casefold() != "the":
                names.add(re.escape(parts[0]))
    if not names:
        return
    alternatives = "|".join(sorted(names, key=len, reverse=True))
    bio = re.compile(rf"^(?:{alternatives})(?:['’]s)?\s+{_BIO_VERB}")
    tail = len(blocks) - _BIO_TAIL
    for i in range(len(blocks) - 1, max(tail, 0) - 1, -1):
        text = blocks[i].text
        if len(text.split()) <= _BIO_WORDS and bio.match(text):
            del blocks[i]




def _drop_trailing_headings(blocks: list[Block]) -> None:
    """A heading with nothing under it introduced something that was removed."""
    while blocks and blocks[-1].kind == "h":
        blocks.pop()


def _strip_lead(blocks: list[Block]) -> list[Block]:
    """Dateline off the first story paragraph; a standfirst repeated by it goes too."""
    for i, block in enumerate(blocks[:3]):
        stripped = strip_dateline(block.text)
        if stripped == block.text:
            continue
        blocks[i] = Block(block.kind, stripped)
        if i > 0:
            previous = _norm(blocks[i - 1].text).rstrip(".…")
            if previous and _norm(stripped).startswith(previous):
                del blocks[i - 1]  # a teaser standfirst that the first sentence repeats
        break
    return blocks
