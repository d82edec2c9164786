"""How an email is written for the wire: addresses and headers as the standards say.

- A domain always goes out as its A-label (IDNA 2008 with the UTS #46 mapping, RFC 5890
  and 5891, through the ``idna`` package): ``jorg@bücher.example`` is
  ``jorg@xn--bcher-kva.example`` in the envelope, in the headers and in the Maildir copy,
  whatever the server offers (bitwarden/server#1512 had the same bug and fix).
- A local part that is not ASCII (``zoé@example.org``) has no ASCII form: the message
  needs SMTPUTF8 (RFC 6531) and UTF-8 headers (RFC 6532). ``needs_smtputf8`` says so; the
  SMTP transport refuses such an email when the server does not offer SMTPUTF8.
- Non-ASCII text in a Subject or a display name becomes RFC 2047 encoded words of at most
  75 characters, and every header is folded before 78 columns where a space allows it
  (RFC 5322 §2.1.1, §2.2.3). The header classes below do this folding themselves: the
  standard library's folder (Python 3.11) writes 76- and 77-character encoded words on
  continuation lines and moves a space between two encoded words into the fold, where
  every reader drops it.
"""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.headerregistry import (
    Address,
    AddressHeader,
    BaseHeader,
    Group,
    HeaderRegistry,
    SingleAddressHeader,
    UniqueAddressHeader,
    UniqueSingleAddressHeader,
    UniqueUnstructuredHeader,
    UnstructuredHeader,
)
from email.message import EmailMessage
from email.policy import SMTP, Policy
from typing import Any, cast

import idna

#: RFC 2047 §2: an encoded word is at most 75 characters long.
ENCODED_WORD_MAX = 75
#: RFC 5322 §2.1.1: lines SHOULD be at most 78 characters (998 at most, always).
LINE_WIDTH = 78
LINE_MAX = 998
#: Octets of the longest word written as it is: past this, a word (no space to fold at)
#: could not fit a line of ``LINE_MAX`` after a field name, and goes as encoded words.
_WORD_MAX = LINE_MAX - LINE_WIDTH
_CHARSET = "utf-8"
_CHROME = len(f"=?{_CHARSET}?q?") + len("?=")
#: RFC 2047 §5(3): the only characters a "Q" encoded word in a phrase may carry as they are
#: (a subset of those allowed elsewhere, so one rule serves Subject and display names).
_Q_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
#: RFC 5322 §3.2.3 atext (a display-name word written as it is).
_ATEXT = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~"
)
_WSP = " \t"
ADDRESS_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc", "Bcc")


class AddressError(ValueError):
    """An address that cannot be written as the standards say; the message says why."""


# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True)
class MailAddress:
    """``local@domain`` as it goes on the wire: the domain is ASCII (its A-label)."""

    local: str
    domain: str

    @property
    def needs_smtputf8(self) -> bool:
        """A local part that is not ASCII can only travel with SMTPUTF8 (RFC 6531)."""
        return not self.local.isascii()

    def header(self, display_name: str = "") -> Address:
        """The address for a From/To header, with an optional display name."""
        return Address(display_name, self.local, self.domain)

    def __str__(self) -> str:
        return self.header().addr_spec


def mail_address(text: str) -> MailAddress:
    """Parse a stored address (``clients.email``, a contact's email, ``company_email``) into
    its wire form: the domain as its A-label (``ascii_domain``), the local part as it is.

    Raises ``AddressError`` for text that is not ``local@domain`` or whose domain has no
    A-label. No DNS lookup.
    """
    value = text.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or any(_is_control_or_space(ch) for ch in value):
        raise AddressError(f"{text!r} is not an email address")
    return MailAddress(local, ascii_domain(domain))


def ascii_domain(domain: str) -> str:
    """``bücher.example`` -> ``xn--bcher-kva.example``: each label that is not ASCII becomes
    its A-label (IDNA 2008 after the UTS #46 mapping, RFC 5891); ASCII labels are left as
    they are (an underscore is not for IDNA to refuse). Raises ``AddressError``."""
    if domain.isascii():
        return domain
    try:
        mapped = idna.uts46_remap(domain, std3_rules=False, transitional=False)
        labels = [
            label if label.isascii() else idna.alabel(label).decode("ascii")
            for label in mapped.split(".")
        ]
    except (idna.IDNAError, UnicodeError) as exc:
        raise AddressError(f"the domain {domain} has no ASCII form (IDNA): {exc}") from exc
    return ".".join(labels)


def _is_control_or_space(ch: str) -> bool:
    return ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F


def needs_smtputf8(message: EmailMessage) -> bool:
    """Whether an address header of ``message`` has a part with no ASCII form, so the
    message can only be written with UTF-8 headers (RFC 6532) and sent with SMTPUTF8."""
    for name in ADDRESS_HEADERS:
        for header in message.get_all(name, []):
            for address in getattr(header, "addresses", ()):
                if not address.username.isascii():
                    return True
    return False


def wire_bytes(message: EmailMessage, *, smtputf8: bool, linesep: str = "\r\n") -> bytes:
    """``message`` as the octets that are sent (``linesep`` CRLF) or stored in a Maildir
    (``"\\n"``): 7-bit headers with encoded words, or with ``smtputf8`` UTF-8 headers.

    Raises ``AddressError`` when an address needs SMTPUTF8 and ``smtputf8`` is false, and
    ``ValueError`` for a header that cannot be written.
    """
    out = io.BytesIO()
    _WireGenerator(out, mangle_from_=False, policy=_written_policy(smtputf8, linesep)).flatten(
        message, unixfrom=False
    )
    return out.getvalue()


#: What the standard generator takes for a line end (``email.generator.NLCRE``).
_NEWLINES = re.compile(r"\r\n|\r|\n")


class _WireGenerator(BytesGenerator):
    """The standard ``BytesGenerator`` (what ``EmailMessage.as_bytes`` writes with), the
    same octets, cheaper where it costs most for an email with an invoice PDF: a text is
    written at once, not line by line (its base64 is hundreds of lines), and a new MIME
    boundary is checked against the parts by a substring search, not by compiling a
    regular expression for each message (any occurrence counts, a stricter test than
    the standard one's line start). The standard methods replaced are ``_write_lines``
    and ``_make_boundary``; tests/unit/test_wire_folding.py checks the octets against
    ``as_bytes``."""

    _NL: str  # the generator's line separator (the policy's)

    def _write_lines(self, lines: str) -> None:
        if lines:
            self.write(_NEWLINES.sub(self._NL, lines))

    @classmethod
    def _make_boundary(cls, text: Any = None) -> str:
        boundary: str = cast("Any", super())._make_boundary()  # random; no text: no search
        if text is None:
            return boundary
        candidate, counter = boundary, 0
        while (
            ("--" + candidate).encode("ascii") in text
            if isinstance(text, bytes)
            else ("--" + candidate) in text
        ):
            candidate, counter = f"{boundary}.{counter}", counter + 1
        return candidate


@functools.cache
def _written_policy(smtputf8: bool, linesep: str) -> Policy:
    """The policy ``wire_bytes`` writes with, made once per kind (a clone per message
    costs as much as writing a short one's headers)."""
    return (SMTPUTF8_POLICY if smtputf8 else SMTP_POLICY).clone(linesep=linesep)


# --------------------------------------------------------------------------- folding


class _Folder:
    """One header field being written: tokens joined by whitespace, folded (a line break
    before that whitespace, RFC 5322 §2.2.3) when a line would pass the width. A line is
    only folded once it holds a token, so no line is the field name alone or whitespace."""

    def __init__(self, name: str, policy: Policy) -> None:
        self.lines = [f"{name}:"]
        self.tokens = 0  # tokens on the last line
        self.width = policy.max_line_length or 998
        self.utf8 = bool(getattr(policy, "utf8", False))
        self.linesep = policy.linesep

    def _room(self, extra: str) -> int:
        return self.width - _octets(self.lines[-1]) - _octets(extra)

    def _fold(self) -> None:
        self.lines.append("")
        self.tokens = 0

    def _add(self, text: str) -> None:
        self.lines[-1] += text
        self.tokens += 1

    def word(self, text: str, space: str = " ") -> None:
        """Append ``space`` and ``text`` (unbreakable); fold before ``space`` if needed.
        With no ``space`` the text is glued to the line (a comma after an address)."""
        if space and self.tokens and _octets(text) > self._room(space):
            self._fold()
        self._add(space + text)

    def encoded(self, text: str, space: str = " ") -> None:
        """Append ``space`` and ``text`` as RFC 2047 encoded words, each at most 75
        characters and within the line width where the line allows it. The space between
        two encoded words is not part of the text (RFC 2047 §6.2), so they may be split
        and folded anywhere between characters."""
        q = _q_length(text) <= _b_length(len(text.encode(_CHARSET)))
        gap = space
        while text:
            count = _fitting(text, min(ENCODED_WORD_MAX, self._room(gap)), q)
            whole = _fitting(text, min(ENCODED_WORD_MAX, self.width - _octets(gap)), q)
            if self.tokens and (count == 0 or count < len(text) == whole):
                # Nothing fits, or a run a fresh line takes whole: fold rather than split.
                self._fold()
                continue
            count = count or _fitting(text, ENCODED_WORD_MAX, q)
            self._add(gap + _encoded_word(text[:count], q))
            text, gap = text[count:], " "

    def text(self) -> str:
        return self.linesep.join(self.lines) + self.linesep


def _octets(text: str) -> int:
    return len(text.encode(_CHARSET, "surrogatepass"))


def _q_bytes(data: bytes) -> str:
    return "".join("_" if b == 0x20 else chr(b) if b in _Q_PLAIN else f"={b:02X}" for b in data)


def _q_length(text: str) -> int:
    return len(_q_bytes(text.encode(_CHARSET)))


def _b_length(octets: int) -> int:
    return 4 * ((octets + 2) // 3)


def _fitting(text: str, room: int, q: bool) -> int:
    """How many characters of ``text`` fit in one encoded word of at most ``room``
    characters (whole characters only: RFC 2047 §5 forbids splitting one)."""
    length, octets = _CHROME, 0
    for count, ch in enumerate(text):
        data = ch.encode(_CHARSET)
        if q:
            length += len(_q_bytes(data))
        else:
            octets += len(data)
            length = _CHROME + _b_length(octets)
        if length > room:
            return count
    return len(text)


def _encoded_word(text: str, q: bool) -> str:
    data = text.encode(_CHARSET)
    if q:
        return f"=?{_CHARSET}?q?{_q_bytes(data)}?="
    return f"=?{_CHARSET}?b?{base64.b64encode(data).decode('ascii')}?="


def _words(value: str) -> list[tuple[str, str]]:
    """``value`` as (whitespace before, word) pairs; whitespace at the end is dropped."""
    pairs: list[tuple[str, str]] = []
    space = word = ""
    for ch in value:
        if ch in _WSP:
            if word:
                pairs.append((space, word))
                space = word = ""
            space += ch
        else:
            word += ch
    if word:
        pairs.append((space, word))
    return pairs


def _looks_encoded(word: str) -> bool:
    """A word that could be part of text a reader takes for an encoded word: ``=?`` or
    ``?=`` in it, even with the other half in another word (RFC 2047 §5 allows no white
    space inside an encoded word, but readers, Python's among them, decode
    ``=?utf-8?q?a b?=`` as ``a b``). Written as encoded words, no such text is left."""
    return "=?" in word or "?=" in word


def _must_encode(word: str, utf8: bool) -> bool:
    """A word that cannot be written as it is: not ASCII in a 7-bit header, a control
    character, text a reader would take for (part of) an encoded word, or only white
    space that is not a space or a tab (a no-break or ideographic space, in UTF-8
    headers: between two encoded words a reader takes it for the folding white space
    between them, which is not text, RFC 2047 §6.2, and drops it), or a word too long
    for any line (``_WORD_MAX``: UTF-8 text with no space, in UTF-8 headers)."""
    return (
        (not utf8 and not word.isascii())
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in word)
        or _looks_encoded(word)
        or word.isspace()
        or _octets(word) > _WORD_MAX
    )


def _runs(pairs: Sequence[tuple[str, str]], encode: Iterable[bool]) -> list[tuple[str, str, bool]]:
    """Merge neighbouring words to encode into one run, the whitespace between them
    inside it (that whitespace is text: only space between encoded words is not)."""
    runs: list[tuple[str, str, bool]] = []
    for (space, word), enc in zip(pairs, encode, strict=True):
        if enc and runs and runs[-1][2]:
            first_space, text, _ = runs[-1]
            runs[-1] = (first_space, text + space + word, True)
        else:
            runs.append((space, word, enc))
    return runs


def fold_unstructured(name: str, value: str, policy: Policy) -> str:
    """``Subject: …`` and other free-text fields (RFC 5322 §3.2.5 unstructured)."""
    folder = _Folder(name, policy)
    pairs = _words(value)
    runs = _runs(pairs, (_must_encode(word, folder.utf8) for _, word in pairs))
    for n, (space, text, enc) in enumerate(runs):
        space = space if n else " "
        if enc:
            folder.encoded(text, space)
        else:
            folder.word(text, space)
    return folder.text()


def _phrase(folder: _Folder, display_name: str, space: str) -> None:
    """A display name (RFC 5322 §3.2.5 phrase): words as atoms when they can be, else one
    quoted string when the name can be written as it is, else encoded words for the runs
    of words that are not atoms (RFC 2047 §5(3); never inside a quoted string)."""
    pairs = _words(display_name)
    if not pairs:
        return
    pairs[0] = (space, pairs[0][1])

    def atom(word: str) -> bool:
        return (
            all(ch in _ATEXT or (folder.utf8 and not ch.isascii()) for ch in word)
            and not _looks_encoded(word)
            and _octets(word) <= _WORD_MAX
        )

    if all(atom(word) for _, word in pairs):
        for gap, word in pairs:
            folder.word(word, gap)
        return
    if not any(_must_encode(word, folder.utf8) for _, word in pairs):
        last = len(pairs) - 1
        for n, (gap, word) in enumerate(pairs):
            quoted = word.replace("\\", "\\\\").replace('"', '\\"')
            folder.word(('"' if n == 0 else "") + quoted + ('"' if n == last else ""), gap)
        return
    for gap, text, enc in _runs(pairs, (not atom(word) for _, word in pairs)):
        if enc:
            folder.encoded(text, gap)
        else:
            folder.word(text, gap)


def fold_addresses(name: str, addresses: Sequence[Address], policy: Policy) -> str:
    """``From: Name <local@domain>, …``: the display name as a phrase, the domain as its
    A-label. Raises ``AddressError`` for a local part that is not ASCII in a 7-bit header."""
    folder = _Folder(name, policy)
    for n, address in enumerate(addresses):
        if n:
            folder.word(",", "")
        spec = Address(username=address.username, domain=ascii_domain(address.domain)).addr_spec
        if not folder.utf8 and not spec.isascii():
            raise AddressError(
                f"{spec}: a local part that is not ASCII can only be sent with SMTPUTF8 "
                "(RFC 6531, 6532)"
            )
        if address.display_name:
            _phrase(folder, address.display_name, " ")
            folder.word(f"<{spec}>")
        else:
            folder.word(spec)
    return folder.text()


# The header classes GoBiller's messages use: the standard ones, folded by the functions
# above, which write from the header's text and addresses. So they skip the standard
# parse tree, which only the standard folding reads, and which cost most of building a
# message. ``HeaderRegistry`` adds ``BaseHeader`` (which supplies ``name``) as the last base.


class _WireUnstructured(UnstructuredHeader):
    """Free text (Subject, Date, Message-ID, GoBiller's own fields) kept as it was
    written: the standard class decodes what looks like an RFC 2047 encoded word in the
    text, so a subject reading ``=?utf-8?q?hi?=`` left as ``hi``; here it is sent as
    written (encoded, so a reader shows it as it is: ``_must_encode``)."""

    name: str

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        kwds["parse_tree"] = None
        kwds["decoded"] = str(value)

    def fold(self, *, policy: Policy) -> str:
        return fold_unstructured(self.name, str(self), policy)


class _WireUniqueUnstructured(_WireUnstructured, UniqueUnstructuredHeader):
    pass


class _WireAddresses(AddressHeader):
    """Address fields. Given ``Address`` objects (as ``build_message`` does), they are
    kept as they are, not written out and parsed back; text is parsed as the standard
    class does."""

    name: str

    @classmethod
    def parse(cls, value: Any, kwds: dict[str, Any]) -> None:
        if isinstance(value, str):
            super().parse(value, kwds)
            return
        items = value if hasattr(value, "__iter__") else [value]
        groups = [item if hasattr(item, "addresses") else Group(None, [item]) for item in items]
        kwds["groups"] = groups
        kwds["decoded"] = ", ".join(str(group) for group in groups)
        kwds["parse_tree"] = None

    def fold(self, *, policy: Policy) -> str:
        return fold_addresses(self.name, self.addresses, policy)


class _WireUniqueAddresses(_WireAddresses, UniqueAddressHeader):
    pass


class _WireSingleAddress(_WireAddresses, SingleAddressHeader):
    pass


class _WireUniqueSingleAddress(_WireAddresses, UniqueSingleAddressHeader):
    pass


#: Headers whose values repeat from message to message (the sender, the MIME headers of a
#: text part, the template's name): parsed once, the parsed header shared (a header object
#: is never changed in place; setting a header replaces it).
_REPEATED = frozenset(
    (
        "from",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "x-gobiller-template",
        "precedence",
    )
)
_PARSED_MAX = 512


class _FoldedOnce:
    """A shared header (``_REPEATED``) is written once per kind of output, not once per
    message: keyed by what folding reads from the policy (its class, line separator,
    width and ``utf8``), not by the policy object, of which the generator makes a new
    copy for every MIME part it writes. Sender threads may fold the same header at once:
    each stores the same text."""

    def fold(self, *, policy: Policy) -> str:
        folds: dict[tuple[object, ...], str] = self.__dict__.setdefault("_folds", {})
        key = (
            type(policy),
            policy.linesep,
            policy.max_line_length,
            bool(getattr(policy, "utf8", False)),
        )
        folded = folds.get(key)
        if folded is None:
            folded = folds[key] = super().fold(policy=policy)  # type: ignore[misc]
        return folded


class _Registry(HeaderRegistry):
    """``HeaderRegistry`` that makes each header's class once (the standard one builds a
    new class with ``type(...)`` for every header it parses or counts) and parses a
    repeated value of the ``_REPEATED`` headers once: most of the cost of building a
    message, which delivery does for every email."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._made: dict[str, type[BaseHeader]] = {}
        self._parsed: dict[tuple[str, object], BaseHeader] = {}

    def map_to_type(self, name: str, cls: type[BaseHeader]) -> None:
        super().map_to_type(name, cls)
        self._made.clear()
        self._parsed.clear()

    def __call__(self, name: str, value: Any) -> BaseHeader:
        lower = name.lower()
        if lower not in _REPEATED:
            return super().__call__(name, value)
        if isinstance(value, Address):
            key: tuple[str, object] = (name, (value.display_name, value.username, value.domain))
        elif isinstance(value, str) and type(value) is str:
            key = (name, value)
        else:
            return super().__call__(name, value)
        parsed = self._parsed.get(key)
        if parsed is None:
            if len(self._parsed) >= _PARSED_MAX:
                self._parsed.clear()
            parsed = self._parsed[key] = super().__call__(name, value)
        return parsed

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = super().__getitem__(name)
            if key in _REPEATED:
                made = cast("type[BaseHeader]", type(made.__name__, (_FoldedOnce, made), {}))
            self._made[key] = made
        return made


def _registry() -> HeaderRegistry:
    registry = _Registry(default_class=_WireUnstructured)
    classes: dict[str, type] = dict.fromkeys(
        ("subject", "date", "message-id"), _WireUniqueUnstructured
    )
    classes.update(dict.fromkeys(("from", "to", "cc", "bcc", "reply-to"), _WireUniqueAddresses))
    classes.update(dict.fromkeys(("resent-from", "resent-to", "resent-cc"), _WireAddresses))
    classes.update({"sender": _WireUniqueSingleAddress, "resent-sender": _WireSingleAddress})
    for name, cls in classes.items():
        registry.map_to_type(name, cast("type[BaseHeader]", cls))
    return registry


#: Messages are built with this policy: the headers above, and bodies chosen to be 7-bit
#: (quoted-printable or base64 when the text is not ASCII: RFC 6152 allows 8-bit bodies
#: only with BODY=8BITMIME), their lines at most 76 characters (RFC 2045 §6.7).
MESSAGE_POLICY = SMTP.clone(header_factory=_registry(), cte_type="7bit", max_line_length=76)
#: Written for a server without SMTPUTF8 (and any Maildir copy whose addresses are ASCII).
SMTP_POLICY = MESSAGE_POLICY.clone(max_line_length=LINE_WIDTH)
#: Written with UTF-8 headers (RFC 6532), sent with SMTPUTF8 (RFC 6531).
SMTPUTF8_POLICY = SMTP_POLICY.clone(utf8=True)
