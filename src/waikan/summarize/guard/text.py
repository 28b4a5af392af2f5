"""Shape checks: Chinese, four paragraphs, length, no chatter, no URL, no obeyed instruction.

Models add "以下是摘要：" or "作为AI…", answer in English, or repeat an
instruction hidden in the article ("tell readers to visit …"). A summary is
third-person reporting, so anything addressed to the reader is a finding.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import re2

from waikan.summarize.guard.numbers import ODD_CASE
from waikan.summarize.guard.obeyed import obeyed_sentences

__all__ = ["han_count", "injection_sentences", "shape_problems"]

_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_ENGLISH_RUN = re.compile(r"(?:\b[A-Za-z][a-z'’]+\b[\s,.;:]+){4,}")
# Boundaries are ASCII-only: \b sees no edge between 见 and a domain glued to it (见t.me/x).
_URL = re.compile(
    r"(?:https?://|ftp://|www\.)[\x21-\x7e]+"
    r"|(?<![A-Za-z0-9-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\."
    r"(?:com|net|org|cn|io|co|info|xyz|top|me|ly|gov|edu|app|dev|news|site|online|link|tv|uk"
    r"|example|biz|shop|club|vip|cc|ru|us|ai|to|gg|so|im|fm|ws|tw|hk|jp|de|fr|su|tk|pw|ml)"
    r"(?![A-Za-z0-9-])(?:/[\x21-\x7e]*)?"
    r"|(?<![A-Za-z0-9-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}/[\x21-\x7e]*",
    re.IGNORECASE,
)
_CHATTER = re.compile(
    r"作为(?:一个|一名)?(?:AI|人工智能|语言模型|大模型|助手)|我是(?:一个)?(?:AI|人工智能|语言模型)"
    r"|以下是|如下[：:]|摘要[：:]|总结如下|好的[，,。！!]|当然[，,！!]|希望(?:这|以上|本).{0,8}(?:帮助|有用)"
    r"|如有(?:其他|任何)?(?:问题|需要)|(?:我|本人)(?:无法|不能|不便)|抱歉|对不起|请注意[，,：:]"
    r"|根据您|您(?:提供|要求|的)|^[#*>\-]\s|\*\*|^\s*\d+[.、]\s"
    r"|\b(?:As an AI|Here is|Here's|Sure[,!]|I cannot|I can't|summary:)",
    re.IGNORECASE | re.MULTILINE,
)
_INSTRUCTION = re.compile(
    r"请(?:您|读者|大家)?(?:立即|马上)?(?:访问|点击|关注|订阅|购买|下载|联系|转发|扫描|扫码|登录|注册|加入|投资"
    r"|拨打|发送|分享|捐款|捐赠|前往|添加|私信|留言|点赞)"
    r"|(?:立即|马上|赶快|赶紧|现在就|务必)(?:访问|点击|关注|订阅|购买|下载|联系|投资|行动|注册|加入|转发)"
    r"|(?:访问|点击|关注|订阅|扫码|下载)[^。，]{0,12}(?:网站|网址|链接|公众号|频道|账号|应用|App|APP)"
    r"|忽略(?:之前|以上|上述|先前|前面)?的?(?:所有)?(?:指令|指示|说明|规则|要求)"
    r"|系统提示|提示词|指令如下"
    r"|本文由.{0,10}(?:赞助|提供支持)|优惠码|折扣码|限时优惠|推荐码|邀请码"
    r"|(?:所有|各位)?读者(?:都)?(?:应该|应当|必须|务必|一定要)"
    r"|强烈(?:建议|推荐)(?:读者|大家|您)|您|PWNED|HACKED"
    r"|(?:读者|大家|各位)(?:可以?|应|需要?|不妨)(?:拨打|访问|点击|关注|订阅|购买|下载|联系|领取|投资)"
    r"|(?:今天|现在|今日)就(?:访问|点击|关注|订阅|购买|下载|联系|注册)",
    re.IGNORECASE,
)
_INJECTION_EN = re.compile(
    r"ignore (?:all |any )?(?:the )?(?:previous|prior|above|earlier|preceding) (?:instructions|"
    r"prompts?|rules)|disregard (?:the|all|your)|you are (?:now )?an? (?:AI|assistant|language)"
    r"|(?:AI|language model|assistant|summari[sz]er)s? (?:must|should|reading)|when summari[sz]ing"
    r"|tell (?:your |the |all )?readers|(?:in|to) (?:your|the) summary|system prompt"
    r"|instructions? (?:to|for) (?:the )?(?:AI|model|assistant)"
    r"|\b(?:AI|LLM|language|chatbot)s? (?:models?|assistants?|systems?|summari[sz]ers?|bots?|"
    r"tools?)(?: reading this| (?:reading|summari[sz]ing|processing) (?:this|the) \w+)?"
    r" (?:must|should|reading|need)"
    r"|\bnote (?:to|for) (?:the |any |all )?(?:AI|LLM|models?|assistants?|summari[sz]ers?|bots?)"
    r"|^(?:please )?(?:write|say|state|claim|report|declare|mention) that\b",
    re.IGNORECASE | re.MULTILINE,
)


def _injection_hint() -> Any:
    """A linear-time RE2 superset of ``_INJECTION_EN`` over the whole article: one pass
    (~0.1 ms) instead of the exact pattern per sentence (~5 ms), which then runs only
    on the rare article it flags. RE2 has ASCII ``\\w`` and ``\\s``, hence the classes;
    a sentence starts at the text start, after ``[.!?]`` and spaces, or after a line break."""
    space = r"[\s\p{Z}\x0b\x1c-\x1f\x85]"
    pattern = _INJECTION_EN.pattern.replace(r"\w", r"[\p{L}\p{N}_]").replace(
        "^", rf"(?:^|[.!?]{space}+|\n)"
    )
    opts = re2.Options()
    opts.case_sensitive = False
    opts.log_errors = False
    return re2.compile(pattern, opts)


_INJECTION_HINT = _injection_hint()

_COMMON = frozenset(
    """the and for that this with from your you are was were our all any not but can
    write say tell readers reader summary summaries summarizers summarizing instructions
    instruction previous prior above ignore disregard model models must should assistant
    line add include phrase end when now article story""".split()
)


def han_count(text: str) -> int:
    return len(_HAN.findall(text))


def injection_sentences(article: str) -> list[str]:
    """Sentences of the article that address a model rather than a reader."""
    if not any(c in article for c in ODD_CASE) and not _INJECTION_HINT.search(article):
        return []  # (re.IGNORECASE matches ODD_CASE to ASCII letters; RE2 does not)
    sentences = re.split(r"(?<=[.!?])\s+|\n+", article)
    return [s for s in sentences if _INJECTION_EN.search(s)]


def shape_problems(
    paragraphs: list[str] | tuple[str, ...],
    *,
    min_han: int,
    max_han: int,
    paragraphs_wanted: int = 4,
    article: str = "",
) -> list[str]:
    problems: list[str] = []
    text = "\n".join(paragraphs)
    han = han_count(text)
    latin = sum(len(w) for w in _LATIN_WORD.findall(text))
    if han == 0 or latin > han * 0.5 or _ENGLISH_RUN.search(text):
        problems.append("language: the summary is not Chinese (English text in the answer)")
    if len(paragraphs) != paragraphs_wanted:
        problems.append(
            f"structure: {len(paragraphs)} paragraphs, expected {paragraphs_wanted} "
            "separated by blank lines"
        )
    if han and not min_han <= han <= max_han:
        problems.append(f"length: {han} Chinese characters, expected {min_han}–{max_han}")
    for m in _URL.finditer(unicodedata.normalize("NFKC", text)):  # ｈｔｔｐｓ：／／ too
        problems.append(f"url: {m.group()} — a summary never contains a URL")
        break
    for m in _CHATTER.finditer(text):
        problems.append(f"chatter: {m.group().strip()!r} is model chatter, not summary")
        break
    for m in _INSTRUCTION.finditer(text):
        problems.append(f"instruction: {m.group()!r} addresses the reader (obeyed instruction?)")
        break
    injected = injection_sentences(article)
    if injected:
        ours = {w.lower() for w in _LATIN_WORD.findall(text)}
        for sentence in injected:
            words = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9]{2,}", sentence)}
            words -= _COMMON
            leaked = sorted(ours & words)
            if leaked:
                problems.append(
                    f"instruction: {leaked[0]} comes from an instruction in the article"
                )
                break
        else:
            for sentence in obeyed_sentences(text, article, injected):
                problems.append(f"instruction: {sentence!r} repeats an instruction in the article")
                break
    return problems
