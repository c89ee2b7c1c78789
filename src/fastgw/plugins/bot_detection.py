"""bot-detection: reject requests whose User-Agent looks like a bot (Kong).

Order (Kong's examine_agent): the ``allow`` regexes first (a match lets the request through),
then ``deny``, then the default list of known bots (from ua-parser's uap-core, as Kong's
``rules.lua``). Verdicts are memoised per User-Agent in a bounded dict: regexes run once per
distinct agent, not once per request.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .base import Plugin, PluginEnv, Response, field_error

# Distinct User-Agents remembered per plugin instance (Kong's lrucache holds 1000).
VERDICT_CACHE_SIZE = 1_000

# Kong's default bot rules (kong/plugins/bot-detection/rules.lua, from uap-core regexes.yaml),
# translated from PCRE to Python's re (same syntax for these patterns).
BOTS = (
    r"(Pingdom.com_bot_version_)(\d+)\.(\d+)",
    r"(facebookexternalhit)/(\d+)\.(\d+)",
    r"Google.*/\+/web/snippet",
    r"(Twitterbot)/(\d+)\.(\d+)",
    r"/((?:Ant-)?Nutch|[A-z]+[Bb]ot|[A-z]+[Ss]pider|Axtaris|fetchurl|Isara|ShopSalad|Tailsweep)[ \-](\d+)(?:\.(\d+)(?:\.(\d+))?)?",
    r"(008|Altresium|Argus|BaiduMobaider|BoardReader|DNSGroup|DataparkSearch|EDI|Goodzer|Grub|INGRID|Infohelfer|LinkedInBot|LOOQ|Nutch|PathDefender|Peew|PostPost|Steeler|Twitterbot|VSE|WebCrunch|WebZIP|Y!J-BR[A-Z]|YahooSeeker|envolk|sproose|wminer)/(\d+)(?:\.(\d+)(?:\.(\d+))?)?",
    r"(MSIE) (\d+)\.(\d+)([a-z]\d?)?;.* MSIECrawler",
    r"(Google-HTTP-Java-Client|Apache-HttpClient|http%20client|Python-urllib|HttpMonitor|TLSProber|WinHTTP|JNLP)(?:[ /](\d+)(?:\.(\d+)(?:\.(\d+))?)?)?",
    r"(1470\.net crawler|50\.nu|8bo Crawler Bot|Aboundex|Accoona-[A-z]+-Agent|AdsBot-Google(?:-[a-z]+)?|altavista|AppEngine-Google|archive.*?\.org_bot|archiver|Ask Jeeves|[Bb]ai[Dd]u[Ss]pider(?:-[A-Za-z]+)*|bingbot|BingPreview|blitzbot|BlogBridge|BoardReader(?: [A-Za-z]+)*|boitho.com-dc|BotSeer|\b\w*favicon\w*\b|\bYeti(?:-[a-z]+)?|Catchpoint bot|[Cc]harlotte|Checklinks|clumboot|Comodo HTTP\(S\) Crawler|Comodo-Webinspector-Crawler|ConveraCrawler|CRAWL-E|CrawlConvera|Daumoa(?:-feedfetcher)?|Feed Seeker Bot|findlinks|Flamingo_SearchEngine|FollowSite Bot|furlbot|Genieo|gigabot|GomezAgent|gonzo1|(?:[a-zA-Z]+-)?Googlebot(?:-[a-zA-Z]+)?|Google SketchUp|grub-client|gsa-crawler|heritrix|HiddenMarket|holmes|HooWWWer|htdig|ia_archiver|ICC-Crawler|Icarus6j|ichiro(?:/mobile)?|IconSurf|IlTrovatore(?:-Setaccio)?|InfuzApp|Innovazion Crawler|InternetArchive|IP2[a-z]+Bot|jbot\b|KaloogaBot|Kraken|Kurzor|larbin|LEIA|LesnikBot|Linguee Bot|LinkAider|LinkedInBot|Lite Bot|Llaut|lycos|Mail\.RU_Bot|masidani_bot|Mediapartners-Google|Microsoft .*? Bot|mogimogi|mozDex|MJ12bot|msnbot(?:-media *)?|msrbot|netresearch|Netvibes|NewsGator[^/]*|^NING|Nutch[^/]*|Nymesis|ObjectsSearch|Orbiter|OOZBOT|PagePeeker|PagesInventory|PaxleFramework|Peeplo Screenshot Bot|PlantyNet_WebRobot|Pompos|Read%20Later|Reaper|RedCarpet|Retreiver|Riddler|Rival IQ|scooter|Scrapy|Scrubby|searchsight|seekbot|semanticdiscovery|Simpy|SimplePie|SEOstats|SimpleRSS|SiteCon|Slurp|snappy|Speedy Spider|Squrl Java|TheUsefulbot|ThumbShotsBot|Thumbshots\.ru|TwitterBot|URL2PNG|Vagabondo|VoilaBot|^vortex|Votay bot|^voyager|WASALive.Bot|Web-sniffer|WebThumb|WeSEE:[A-z]+|WhatWeb|WIRE|WordPress|Wotbox|www\.almaden\.ibm\.com|Xenu(?:.s)? Link Sleuth|Xerka [A-z]+Bot|yacy(?:bot)?|Yahoo[a-z]*Seeker|Yahoo! Slurp|Yandex\w+|YodaoBot(?:-[A-z]+)?|YottaaMonitor|Yowedo|^Zao|^Zao-Crawler|ZeBot_www\.ze\.bz|ZooShot|ZyBorg)(?:[ /]v?(\d+)(?:\.(\d+)(?:\.(\d+))?)?)?",
    r"(?:\/[A-Za-z0-9\.]+)? *([A-Za-z0-9 \-_\!\[\]:]*(?:[Aa]rchiver|[Ii]ndexer|[Ss]craper|[Bb]ot|[Ss]pider|[Cc]rawl[a-z]*))/(\d+)(?:\.(\d+)(?:\.(\d+))?)?",
    r"(?:\/[A-Za-z0-9\.]+)? *([A-Za-z0-9 _\!\[\]:]*(?:[Aa]rchiver|[Ii]ndexer|[Ss]craper|[Bb]ot|[Ss]pider|[Cc]rawl[a-z]*)) (\d+)(?:\.(\d+)(?:\.(\d+))?)?",
    r"((?:[A-z0-9]+|[A-z\-]+ ?)?(?: the )?(?:[Ss][Pp][Ii][Dd][Ee][Rr]|[Ss]crape|[A-Za-z0-9-]*(?:[^C][^Uu])[Bb]ot|[Cc][Rr][Aa][Ww][Ll])[A-z0-9]*)(?:(?:[ /]| v)(\d+)(?:\.(\d+)(?:\.(\d+))?)?)?",
)
_BOTS_RE = re.compile("|".join(f"(?:{b})" for b in BOTS))


def _compile(patterns: list[str], field: str) -> tuple[re.Pattern[str], ...]:
    out = []
    for i, p in enumerate(patterns):
        try:
            out.append(re.compile(p))
        except re.error as e:
            raise field_error(f"{field}[{i}]", f"'{p}' is not a valid regex: {e}") from None
    return tuple(out)


class BotDetectionConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Regexes of User-Agents always let through / always rejected (default none).
    allow: list[str] = []
    deny: list[str] = []

    def __post_init__(self) -> None:
        _compile(self.allow, "allow")
        _compile(self.deny, "deny")


_ALLOW, _DENY, _BOT, _NONE = 0, 1, 2, 3


class BotDetection(Plugin):
    name = "bot-detection"
    PRIORITY = 2500
    Config = BotDetectionConfig

    def __init__(self, config: BotDetectionConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._allow = _compile(config.allow, "allow")
        self._deny = _compile(config.deny, "deny")
        self._verdicts: dict[str, int] = {}

    def _examine(self, ua: str) -> int:
        for r in self._allow:
            if r.search(ua):
                return _ALLOW
        for r in self._deny:
            if r.search(ua):
                return _DENY
        if _BOTS_RE.search(ua):
            return _BOT
        return _NONE

    def access(self, ctx: Any) -> Response | None:
        values = ctx.request.get_header_all_bytes(b"user-agent")
        if not values:
            return None
        if len(values) > 1:
            return Response.message(400, "Only one User-Agent header allowed")
        ua = values[0].decode("latin-1").strip()
        verdict = self._verdicts.get(ua)
        if verdict is None:
            verdict = self._examine(ua)
            if len(self._verdicts) >= VERDICT_CACHE_SIZE:
                del self._verdicts[next(iter(self._verdicts))]
            self._verdicts[ua] = verdict
        if verdict == _DENY or verdict == _BOT:
            return Response.message(403, "Forbidden")
        return None
