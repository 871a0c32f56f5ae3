"""Values as exports write them: phones to E.164, the company's domain from its website,
URLs with a scheme, a region from a country name.

The libraries that know the rules (phonenumbers, tldextract, pycountry) are per-value Python,
about 40 µs a phone number. So each step applies them to the UNIQUE values of a batch only and
maps the answers back with one vectorised `replace_strict`; values seen in an earlier batch come
from a per-process cache. North American numbers in the usual formats, the bulk of most lead
lists, skip phonenumbers' parser: `nanp_fast` checks them against phonenumbers' own US
metadata patterns in polars (same answers, tested). The transform runs on worker threads
(`etl.ahead.map_ahead`), never on the event loop.

Pure: the same value (and region) always gives the same answer; nothing here reads the network
(tldextract reads its bundled public-suffix snapshot, see `_tld_extractor`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

import polars as pl

from etl.errors import UsageError

if TYPE_CHECKING:
    import tldextract

PHONE_FIELD = "phoneNumber"
URL_FIELDS: tuple[str, ...] = ("linkedinUrl", "companyUrl")
COUNTRY_COLUMN = "_country"
"""The `[hints] country` column as `map_fields` hands it on (dropped with the other helpers)."""

_CACHE_LIMIT = 1_000_000
"""Per-process cache entries per kind (~150 bytes each): a 5M-row file with a million distinct
phone numbers stays bounded; a file re-using numbers across batches pays for each once."""

_SCHEME = r"^[A-Za-z][A-Za-z0-9+.\-]*://"
_HOST_LIKE = r"^[^\s/:@]+\.[^\s/.]+"
"""`acme.io`, `www.acme.io/about`, `linkedin.com/in/x`: a dotted name first, no blank in it."""

NOT_COMPANY_DOMAINS = frozenset(
    {"linkedin.com", "facebook.com", "fb.com", "twitter.com", "x.com", "instagram.com", "youtube.com",
     "crunchbase.com", "github.com", "angel.co", "wellfound.com", "google.com", "bit.ly"}
)  # fmt: skip
"""A "website" pointing at a profile page on one of these says nothing about the company's own
domain (Apollo and ZoomInfo exports put LinkedIn company pages in URL columns)."""

# Names that ISO 3166 (pycountry) does not carry but exports and people write.
_COUNTRY_ALIASES = {
    "uk": "GB", "u.k.": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "great britain": "GB", "britain": "GB", "u.s.": "US", "u.s.a.": "US", "us of a": "US", "america": "US",
    "united states of america": "US", "russia": "RU", "turkey": "TR", "holland": "NL", "the netherlands": "NL",
    "deutschland": "DE", "österreich": "AT", "schweiz": "CH", "suisse": "CH", "españa": "ES", "italia": "IT",
    "brasil": "BR", "méxico": "MX", "belgië": "BE", "belgique": "BE", "danmark": "DK", "sverige": "SE",
    "norge": "NO", "suomi": "FI", "polska": "PL", "ivory coast": "CI", "macedonia": "MK", "korea": "KR",
    "south korea": "KR", "north korea": "KP", "uae": "AE", "u.a.e.": "AE", "emirates": "AE", "vietnam": "VN",
    "czech republic": "CZ", "cape verde": "CV", "swaziland": "SZ", "burma": "MM", "east timor": "TL",
    "laos": "LA", "syria": "SY", "iran": "IR", "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ",
    "moldova": "MD", "palestine": "PS", "vatican": "VA", "hong kong sar": "HK", "macau": "MO",
}  # fmt: skip


# --- per-value decisions (pure, cached) -------------------------------------------------------


@lru_cache(maxsize=4096)
def resolve_region(value: str) -> str | None:
    """A country as exports write it -> the phonenumbers region code, or None.

    "US", "us", "USA", "United States", "Germany", "DE", "DEU", "Deutschland", "UK" -> "US",
    "US", "US", "US", "DE", "DE", "DE", "DE", "GB". Unknown or not a phone region -> None.
    """
    import phonenumbers

    name = " ".join(value.split()).casefold().removeprefix("the ")
    if not name:
        return None
    code = _COUNTRY_ALIASES.get(name)
    if code is None and len(name) == 2:
        code = name.upper()
    if code is None:
        import pycountry

        try:
            code = pycountry.countries.lookup(name).alpha_2
        except LookupError:
            return None
    return code if code in phonenumbers.SUPPORTED_REGIONS else None


def region_option(value: str | None) -> str | None:
    """`--default-region` / the job file's `default_region` -> a region code; `UsageError` when
    it names no region (one clear line, before any work)."""
    if value is None or not value.strip():
        return None
    code = resolve_region(value)
    if code is None:
        raise UsageError(
            f"--default-region {value!r} is not a country phone numbers can be read in "
            "(use a code such as US, GB, DE, or a name such as Germany)"
        )
    return code


_NANP_FORM = r"^(\+?1)?[ .\-]*\(?([2-9][0-9]{2})\)?[ .\-]*([0-9]{3})[ .\-]*([0-9]{4})$"
"""A North American number as US exports write it: `+1 (415) 555-0100`, `415.555.0100`,
`1-415-555-0100`, `4155550100` (digits, blanks, `.`, `-`, brackets round the area code only)."""
_NANP_REGIONS = frozenset({"US", "CA"})
"""Regions in which a number written without `+1` is read as North American by the fast path
(both read a 10-digit number and a leading `1` the same way: national prefix `1`)."""


@lru_cache(maxsize=1)
def _us_valid_patterns() -> tuple[str, str] | None:
    """(general, any type) full-match regexes that decide phonenumbers' `is_valid_number` for a
    10-digit US national number, taken from phonenumbers' own metadata (so they follow the
    library's updates). The US comes first among the +1 regions and has no leading digits, so
    a number valid by the US rules is valid and read as US; anything else takes the slow path."""
    from phonenumbers.phonemetadata import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region("US")
    if meta is None:
        return None

    def usable(desc: object) -> str | None:
        pattern = getattr(desc, "national_number_pattern", None)
        lengths = getattr(desc, "possible_length", ())
        return pattern if pattern and (not lengths or 10 in lengths) else None

    general = usable(meta.general_desc)
    kinds = ["premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
             "fixed_line", *([] if meta.same_mobile_and_fixed_line_pattern else ["mobile"])]  # fmt: skip
    types = [p for k in kinds if (p := usable(getattr(meta, k)))]
    if general is None or not types:
        return None
    return f"^(?:{general})$", "^(?:" + "|".join(f"(?:{p})" for p in types) + ")$"


def nanp_fast(phones: pl.Series, regions: pl.Series) -> pl.Series:
    """E.164 for the numbers `_NANP_FORM` matches that are valid by the US rules (`+1` written,
    or read in the US or Canada); null for every other value, which takes `phone_e164`.

    Vectorised: two regex scans instead of ~40 µs of phonenumbers per distinct number. Equal to
    `phone_e164` wherever it answers (tests/transform/test_values.py compares them on random
    numbers and formats)."""
    patterns = _us_valid_patterns()
    if patterns is None:
        return pl.Series(phones.name, [None] * phones.len(), dtype=pl.String)
    general, types = patterns
    parts = pl.DataFrame({"p": phones, "r": regions}).with_columns(g=pl.col("p").str.extract_groups(_NANP_FORM))
    national = pl.concat_str([pl.col("g").struct.field(k) for k in ("2", "3", "4")])
    read_as_nanp = (pl.col("g").struct.field("1") == "+1").fill_null(False) | (
        ~pl.col("p").str.starts_with("+") & pl.col("r").is_in(list(_NANP_REGIONS))
    )
    staged = parts.select(n=pl.when(read_as_nanp).then(national))
    valid = pl.col("n").str.contains(general) & pl.col("n").str.contains(types)
    return staged.select(pl.when(valid).then(pl.lit("+1") + pl.col("n")).alias(phones.name)).to_series()


def phone_e164(raw: str, region: str | None) -> str:
    """`+1 (415) 555-0100` -> `+14155550100` when phonenumbers reads a valid number (a `+`
    number needs no region); an extension is kept (`+14155550100 ext. 23`). Anything it cannot
    read as a valid number comes back unchanged: a wrong guess (a German number read as a US
    one) would be worse than the value as written."""
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_valid_number(number):
        return raw
    out = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return f"{out} ext. {number.extension}" if number.extension else out


_TLD_LOCK = threading.Lock()
_TLD: list[tldextract.TLDExtract] = []


def _tld_extractor() -> tldextract.TLDExtract:
    """tldextract on its bundled public-suffix snapshot: no fetch (`suffix_list_urls=()`), no
    cache directory (`cache_dir=None`), so a run never touches the network or the disk for it
    (tests/transform/test_values.py runs it with sockets disabled). Private suffixes count
    (`acme.github.io` is Acme's own site, not GitHub's)."""
    with _TLD_LOCK:
        if not _TLD:
            import tldextract

            extractor = tldextract.TLDExtract(
                suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True, include_psl_private_domains=True
            )
            extractor("example.com")  # load the snapshot now, under the lock, once
            _TLD.append(extractor)
        return _TLD[0]


def registered_domain(url: str) -> str | None:
    """`http://www.acme.io/about` -> `acme.io`, `https://shop.bbc.co.uk` -> `bbc.co.uk`; None for
    an IP address, a bare word, or a profile page on a social site (`NOT_COMPANY_DOMAINS`)."""
    extracted = _tld_extractor()(url.strip())
    if not extracted.suffix or not extracted.domain:
        return None
    domain = f"{extracted.domain}.{extracted.suffix}".lower()
    return None if domain in NOT_COMPANY_DOMAINS else domain


# --- vectorised steps ---------------------------------------------------------------------------


class _Cache:
    """A bounded, thread-safe per-process memo for one per-value function (answers are pure)."""

    def __init__(self) -> None:
        self.data: dict[str, str | None] = {}
        self.lock = threading.Lock()

    def map(self, keys: list[str], fn: Callable[[str], str | None]) -> list[str | None]:
        with self.lock:
            known = {k: self.data[k] for k in keys if k in self.data}
        fresh = {k: fn(k) for k in keys if k not in known}  # outside the lock: the slow part
        if fresh:
            with self.lock:
                if len(self.data) + len(fresh) > _CACHE_LIMIT:
                    self.data.clear()
                self.data.update(fresh)
        return [known[k] if k in known else fresh[k] for k in keys]


_PHONES = _Cache()
_DOMAINS = _Cache()


def map_unique(values: pl.Series, fn: Callable[[str], str | None], cache: _Cache | None = None) -> pl.Series:
    """`fn` over the distinct non-null values only, mapped back with one `replace_strict`."""
    distinct = values.drop_nulls().unique()
    if distinct.len() == 0:
        return pl.Series(values.name, [None] * values.len(), dtype=pl.String)
    keys = distinct.to_list()
    answers = cache.map(keys, fn) if cache is not None else [fn(k) for k in keys]
    return values.replace_strict(keys, answers, default=None, return_dtype=pl.String)


def add_url_schemes(frame: pl.DataFrame) -> pl.DataFrame:
    """`www.acme.io` -> `https://www.acme.io`, `//acme.io` -> `https://acme.io` in the URL fields.
    Values that do not start like a host name are left as written. A column whose every value
    has `://` (the usual export) costs one literal scan."""
    exprs: list[pl.Expr] = []
    for name in URL_FIELDS:
        if name not in frame.columns or frame.get_column(name).null_count() == frame.height:
            continue
        col = pl.col(name)
        if frame.select(col.str.contains("://", literal=True).fill_null(True).all()).item():
            continue
        bare = ~col.str.contains(_SCHEME)
        exprs.append(
            pl.when(bare & col.str.starts_with("//"))
            .then(pl.lit("https:") + col)
            .when(bare & col.str.contains(_HOST_LIKE))
            .then(pl.lit("https://") + col)
            .otherwise(col)
            .alias(name)
        )
    return frame.with_columns(exprs) if exprs else frame


def derive_company_domain(frame: pl.DataFrame) -> pl.DataFrame:
    """`companyDomain`, where empty, becomes the registered domain of `companyUrl` (public-suffix
    aware, no `www.`). A given domain is kept as written."""
    if "companyUrl" not in frame.columns or "companyDomain" not in frame.columns:
        return frame
    missing = frame.get_column("companyDomain").is_null()
    if not missing.any() or frame.get_column("companyUrl").null_count() == frame.height:
        return frame
    urls = frame.select(pl.when(missing).then(pl.col("companyUrl"))).to_series()
    derived = map_unique(urls, registered_domain, _DOMAINS)
    return frame.with_columns(pl.coalesce(pl.col("companyDomain"), pl.lit(derived)).alias("companyDomain"))


def normalise_phones(frame: pl.DataFrame, default_region: str | None) -> pl.DataFrame:
    """`phoneNumber` to E.164 where a region is known: the row's `[hints] country` column, else
    `default_region`. A number written with `+` is read without one. Without any region the
    value stays as `strip_values` left it (trimmed, text prefix removed)."""
    if PHONE_FIELD not in frame.columns:
        return frame
    phones = frame.get_column(PHONE_FIELD)
    if phones.null_count() == frame.height:
        return frame
    has_country = COUNTRY_COLUMN in frame.columns and frame.get_column(COUNTRY_COLUMN).null_count() < frame.height
    if has_country:
        regions = map_unique(frame.get_column(COUNTRY_COLUMN), resolve_region)
        if default_region:
            regions = regions.fill_null(default_region)
    elif default_region:
        regions = pl.repeat(default_region, frame.height, dtype=pl.String, eager=True)
    else:
        # No region: only numbers written with `+` can be read.
        regions = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    fast = nanp_fast(phones, regions)
    # One key per (region, number) the fast path left; a `+` number reads the same in every region.
    keyed = pl.DataFrame({"p": phones, "r": regions, "f": fast}).select(
        pl.when(pl.col("f").is_not_null())
        .then(None)
        .when(pl.col("p").str.starts_with("+"))
        .then(pl.lit("\x1f") + pl.col("p"))
        .when(pl.col("r").is_not_null())
        .then(pl.col("r") + pl.lit("\x1f") + pl.col("p"))
        .alias("k")
    )
    normalised = map_unique(keyed.to_series(), _phone_from_key, _PHONES)
    return frame.with_columns(pl.coalesce(pl.lit(fast), pl.lit(normalised), pl.col(PHONE_FIELD)).alias(PHONE_FIELD))


def _phone_from_key(key: str) -> str:
    region, _, raw = key.partition("\x1f")
    return phone_e164(raw, region or None)
