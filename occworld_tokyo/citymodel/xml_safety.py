"""Safe XML opening: refuse entity declarations and external DTDs before lxml sees the document.

PLATEAU CityGML never has a DOCTYPE. A DOCTYPE that declares entities (the "billion laughs" bomb) or
points at an external DTD/entity (SYSTEM "file:///etc/passwd", an http URL) is refused outright, and
the parser itself is configured not to load DTDs, resolve entities or touch the network (defence in depth).
"""

from __future__ import annotations

import re

from lxml import etree

from .errors import UnsafeXMLError

HEAD_BYTES = 1 << 16
_DOCTYPE_RE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_DANGER_RE = re.compile(rb"<!ENTITY|\bSYSTEM\b|\bPUBLIC\b", re.IGNORECASE)
_ROOT_RE = re.compile(rb"<[A-Za-z_]")


def _as_utf8(head: bytes) -> bytes:
    """The head re-encoded as UTF-8 when it is UTF-16/32 (BOM or NUL bytes), so the checks see the text."""
    probe = head[:200]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in probe:
        for enc in ("utf-32", "utf-16", "utf-16-le", "utf-16-be"):
            try:
                text = head.decode(enc, errors="ignore")
            except (UnicodeDecodeError, LookupError):
                continue
            if "<" in text[:100]:
                return text.encode("utf-8", errors="ignore")
    return head


def check_prolog(head: bytes, where: str) -> None:
    """Raise UnsafeXMLError if the document head declares entities or an external DTD."""
    head = _as_utf8(head)
    root = _ROOT_RE.search(head)
    prolog = head[: root.start()] if root else head
    m = _DOCTYPE_RE.search(prolog)
    if m is None:
        return
    doctype = prolog[m.start():]
    danger = _DANGER_RE.search(doctype)
    if danger is not None or root is None:
        line = head[: m.start()].count(b"\n") + 1
        what = danger.group(0).decode("ascii", "replace") if danger else "an over-long DOCTYPE"
        raise UnsafeXMLError(
            f"{where}, line {line}: the DOCTYPE declares {what} (entity declarations or an external DTD). "
            "Such files can expand to gigabytes (entity bomb) or read local files/URLs (external entity); "
            "it is refused and nothing in it is expanded or fetched. PLATEAU CityGML has no DOCTYPE. "
            "Fix: use the file as published by PLATEAU, or remove the DOCTYPE.")


def safe_parser_options() -> dict:
    """Options for lxml parsers / iterparse that never expand entities, load DTDs or use the network."""
    # huge_tree stays off: libxml2's own limits against entity amplification remain in force
    return dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True)


def safe_fromstring(data: bytes, where: str) -> etree._Element:
    """Parse a small XML document safely (used for tests and tiny files)."""
    check_prolog(data[:HEAD_BYTES], where)
    parser = etree.XMLParser(**safe_parser_options())
    return etree.fromstring(data, parser)
