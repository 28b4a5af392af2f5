"""Built-in map from a news site's domain to the name readers know it by.

Used when neither the configured source nor the page (JSON-LD publisher,
``og:site_name``) names the outlet, and to recognize a site-name suffix in
``<title>`` ("… - BBC News").
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["DOMAIN_NAMES", "source_for_url"]

DOMAIN_NAMES: dict[str, str] = {
    # wires
    "reuters.com": "Reuters",
    "apnews.com": "AP",
    "afp.com": "AFP",
    "bloomberg.com": "Bloomberg",
    "upi.com": "UPI",
    # UK / Ireland
    "bbc.co.uk": "BBC News",
    "bbc.com": "BBC News",
    "theguardian.com": "The Guardian",
    "guardian.co.uk": "The Guardian",
    "ft.com": "Financial Times",
    "economist.com": "The Economist",
    "telegraph.co.uk": "The Telegraph",
    "thetimes.co.uk": "The Times",
    "independent.co.uk": "The Independent",
    "news.sky.com": "Sky News",
    "sky.com": "Sky News",
    "dailymail.co.uk": "Daily Mail",
    "mirror.co.uk": "Mirror",
    "thesun.co.uk": "The Sun",
    "irishtimes.com": "The Irish Times",
    "rte.ie": "RTÉ",
    # US
    "nytimes.com": "The New York Times",
    "washingtonpost.com": "The Washington Post",
    "wsj.com": "The Wall Street Journal",
    "npr.org": "NPR",
    "cnn.com": "CNN",
    "edition.cnn.com": "CNN",
    "nbcnews.com": "NBC News",
    "abcnews.go.com": "ABC News",
    "cbsnews.com": "CBS News",
    "foxnews.com": "Fox News",
    "foxbusiness.com": "Fox Business",
    "cnbc.com": "CNBC",
    "usatoday.com": "USA Today",
    "latimes.com": "Los Angeles Times",
    "chicagotribune.com": "Chicago Tribune",
    "bostonglobe.com": "The Boston Globe",
    "politico.com": "Politico",
    "politico.eu": "Politico Europe",
    "axios.com": "Axios",
    "thehill.com": "The Hill",
    "pbs.org": "PBS",
    "time.com": "Time",
    "newsweek.com": "Newsweek",
    "theatlantic.com": "The Atlantic",
    "newyorker.com": "The New Yorker",
    "vox.com": "Vox",
    "businessinsider.com": "Business Insider",
    "forbes.com": "Forbes",
    "fortune.com": "Fortune",
    "marketwatch.com": "MarketWatch",
    "nypost.com": "New York Post",
    "nydailynews.com": "New York Daily News",
    "seattletimes.com": "The Seattle Times",
    "sfgate.com": "SFGATE",
    "miamiherald.com": "Miami Herald",
    "theverge.com": "The Verge",
    "wired.com": "Wired",
    "arstechnica.com": "Ars Technica",
    "techcrunch.com": "TechCrunch",
    "engadget.com": "Engadget",
    "voanews.com": "VOA",
    "rferl.org": "RFE/RL",
    "propublica.org": "ProPublica",
    "thedailybeast.com": "The Daily Beast",
    "scientificamerican.com": "Scientific American",
    "technologyreview.com": "MIT Technology Review",
    "news.yahoo.com": "Yahoo News",
    "espn.com": "ESPN",
    # elsewhere
    "aljazeera.com": "Al Jazeera",
    "dw.com": "DW",
    "france24.com": "France 24",
    "euronews.com": "Euronews",
    "cbc.ca": "CBC News",
    "theglobeandmail.com": "The Globe and Mail",
    "abc.net.au": "ABC News (Australia)",
    "smh.com.au": "The Sydney Morning Herald",
    "news.com.au": "news.com.au",
    "scmp.com": "South China Morning Post",
    "japantimes.co.jp": "The Japan Times",
    "straitstimes.com": "The Straits Times",
    "channelnewsasia.com": "CNA",
    "hindustantimes.com": "Hindustan Times",
    "timesofindia.indiatimes.com": "The Times of India",
    "thehindu.com": "The Hindu",
    "nikkei.com": "Nikkei",
    "asia.nikkei.com": "Nikkei Asia",
    "koreaherald.com": "The Korea Herald",
    "inquirer.net": "Inquirer",
    "nzherald.co.nz": "NZ Herald",
    "haaretz.com": "Haaretz",
    "timesofisrael.com": "The Times of Israel",
}


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host.lower().rstrip(".") if host else None


def source_for_url(url: str | None) -> str | None:
    """The outlet's name for ``url``'s host or its closest listed parent domain."""
    host = _host(url)
    if not host:
        return None
    parts = host.split(".")
    for i in range(len(parts) - 1):
        name = DOMAIN_NAMES.get(".".join(parts[i:]))
        if name:
            return name
    return None


def registrable_label(url: str | None) -> str | None:
    """The distinctive label of the host ("bbc" for www.bbc.co.uk), for suffix matching."""
    host = _host(url)
    if not host:
        return None
    parts = [p for p in host.split(".") if p not in {"www", "m", "amp", "edition", "news"}]
    if not parts:
        return None
    # drop the public suffix: one label, or two for co.uk-like suffixes
    if len(parts) >= 3 and parts[-2] in {"co", "com", "org", "net", "ac", "gov"}:
        parts = parts[:-2]
    elif len(parts) >= 2:
        parts = parts[:-1]
    return parts[-1] if parts else None
