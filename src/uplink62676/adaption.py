"""Token adaption for a VSS in front of its devices (tokens.md section 4, Annex B).

A VSS's clients use remote tokens, its devices local ones.  Requests coming
in are rewritten remote -> local (and tell which device to forward to);
responses and forwarded notifications going out are rewritten local ->
remote.  Stream and snapshot URIs in responses go through a pluggable hook,
the VSS's streaming proxy (TOK-18, TOK-19, TOK-25).

The rules are data (:data:`RULES`): for each operation the places in the
request and in the response that hold tokens, written as short paths,
compiled once into :class:`lxml.etree.XPath` objects at import.  Only the
token values change; namespaces, prefixes, unknown elements and attributes
are left as they were, and an envelope without a rule -- or without a token
to change -- is returned as the very same bytes.

Unknown incoming tokens raise the operation's own :class:`SoapFault`
(``env:Sender / ter:InvalidArgVal / ter:NoProfile`` for Media2 and PTZ,
``ter:NoToken`` for presets, ``ter:InvalidToken`` / ``ter:InvalidSource``
for recording search, ``ter:NoRecording`` for replay).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, NamedTuple

import attrs
from lxml import etree

from . import namespaces as ns
from ._xml import DEFAULT_MAX_BYTES, parse_xml
from .errors import ConfigurationError, SoapFault
from .tokenmap import TokenMapper

__all__ = [
    "RULES",
    "AdaptionResult",
    "OperationRule",
    "RuleSet",
    "Site",
    "TokenAdapter",
    "TokenRewrite",
    "UriContext",
    "UriRewriter",
    "adapt_request",
    "adapt_response",
    "compile_rules",
    "default_source_item",
]

_NS: Final[dict[str, str]] = {
    "tt": ns.TT,
    "tr2": ns.TR2,
    "tptz": ns.TPTZ,
    "tse": ns.TSE,
    "trp": ns.TRP,
    "tev": ns.TEV,
    "wsnt": ns.WSNT,
}


@attrs.frozen(slots=True)
class Site:
    """One place holding tokens, relative to the operation element.

    ``path`` is ``step/step`` (prefixed names of :data:`_NS`), optionally
    ending in ``/@attr``.  ``fault`` is the subcode raised for an unknown
    incoming token (default: the rule's); ``session`` marks search-session
    tokens (transient, TOK-R5); ``preset`` marks PTZ preset tokens (adapted
    only when the adapter re-keys presets); ``source_items`` marks a path to
    ``tt:SimpleItem`` elements of a notification's ``Source`` whose ``Value``
    is a token when its ``Name`` passes the adapter's predicate (TOK-26).
    """

    path: str
    fault: str | None = None
    session: bool = False
    preset: bool = False
    source_items: bool = False


@attrs.frozen(slots=True)
class OperationRule:
    """Token places of one operation (a row of tokens.md section 4).

    ``request`` / ``response`` are prefixed element names of the message
    bodies; ``request`` is ``None`` for outgoing-only messages (notifications).
    ``uris`` are response paths holding URIs for the proxy hook;
    ``ends_session`` marks EndSearch.
    """

    request: str | None
    response: str | None
    fault: str
    request_sites: tuple[Site, ...] = ()
    response_sites: tuple[Site, ...] = ()
    uris: tuple[str, ...] = ()
    ends_session: bool = False
    spec: str = ""


_CONFIGS: Final = (
    "VideoSource",
    "AudioSource",
    "VideoEncoder",
    "AudioEncoder",
    "Analytics",
    "PTZ",
    "Metadata",
    "AudioOutput",
    "AudioDecoder",
    "Receiver",
)
_PROFILE_SITES: Final = (
    Site("tr2:Profiles/@token"),
    *(Site(f"tr2:Profiles/tr2:Configurations/tr2:{c}/@token") for c in _CONFIGS),
    Site("tr2:Profiles/tr2:Configurations/tr2:VideoSource/tt:SourceToken"),
    Site("tr2:Profiles/tr2:Configurations/tr2:AudioSource/tt:SourceToken"),
    Site("tr2:Profiles/tr2:Configurations/tr2:PTZ/tt:NodeToken"),
    Site("tr2:Profiles/tr2:Configurations/tr2:AudioOutput/tt:OutputToken"),
)


def _recording_info_sites(base: str) -> tuple[Site, ...]:
    return (
        Site(f"{base}/tt:RecordingToken"),
        Site(f"{base}/tt:Source/tt:VideoSourceToken"),
        Site(f"{base}/tt:Track/tt:TrackToken"),
    )


def _scope_sites() -> tuple[Site, ...]:
    return (
        Site("tse:Scope/tt:IncludedSources/tt:Token", fault="ter:InvalidSource"),
        Site("tse:Scope/tt:IncludedRecordings"),
    )


_NOTIFICATION: Final = "wsnt:NotificationMessage/wsnt:Message/tt:Message/tt:Source/tt:SimpleItem"


def _ptz(op: str, *, spec: str = "TOK-20", extra: tuple[Site, ...] = (),
         response: tuple[Site, ...] = ()) -> OperationRule:
    return OperationRule(
        f"tptz:{op}",
        f"tptz:{op}Response",
        "ter:NoProfile",
        (Site("tptz:ProfileToken"), *extra),
        response,
        spec=spec,
    )


#: The adaption table (TOK-17 .. TOK-26, TOK-R5, OQ-32): one row per operation.
RULES: Final[tuple[OperationRule, ...]] = (
    OperationRule(
        "tr2:GetProfiles", "tr2:GetProfilesResponse", "ter:NoProfile",
        (Site("tr2:Token"),), _PROFILE_SITES, spec="TOK-17",
    ),
    OperationRule(
        "tr2:GetStreamUri", "tr2:GetStreamUriResponse", "ter:NoProfile",
        (Site("tr2:ProfileToken"),), uris=("tr2:Uri",), spec="TOK-18",
    ),
    OperationRule(
        "tr2:GetSnapshotUri", "tr2:GetSnapshotUriResponse", "ter:NoProfile",
        (Site("tr2:ProfileToken"),), uris=("tr2:Uri",), spec="TOK-19",
    ),
    _ptz("AbsoluteMove"),
    _ptz("RelativeMove", spec="TOK-20 (moves, by the same rule)"),
    _ptz("ContinuousMove"),
    _ptz("Stop"),
    _ptz("SendAuxiliaryCommand"),
    _ptz("GetPresets", spec="TOK-20, TOK-R5",
         response=(Site("tptz:Preset/@token", preset=True),)),
    _ptz("GotoPreset", spec="TOK-20, TOK-R5",
         extra=(Site("tptz:PresetToken", fault="ter:NoToken", preset=True),)),
    _ptz("SetPreset", spec="TOK-R5",
         extra=(Site("tptz:PresetToken", fault="ter:NoToken", preset=True),),
         response=(Site("tptz:PresetToken", preset=True),)),
    _ptz("RemovePreset", spec="TOK-R5",
         extra=(Site("tptz:PresetToken", fault="ter:NoToken", preset=True),)),
    OperationRule(
        "tse:GetRecordingInformation", "tse:GetRecordingInformationResponse",
        "ter:InvalidToken",
        (Site("tse:RecordingToken"),), _recording_info_sites("tse:RecordingInformation"),
        spec="TOK-21",
    ),
    OperationRule(
        "tse:FindRecordings", "tse:FindRecordingsResponse", "ter:InvalidToken",
        _scope_sites(), (Site("tse:SearchToken", session=True),), spec="TOK-22",
    ),
    OperationRule(
        "tse:GetRecordingSearchResults", "tse:GetRecordingSearchResultsResponse",
        "ter:InvalidToken",
        (Site("tse:SearchToken", session=True),),
        _recording_info_sites("tse:ResultList/tt:RecordingInformation"),
        spec="TOK-23",
    ),
    OperationRule(
        "tse:EndSearch", "tse:EndSearchResponse", "ter:InvalidToken",
        (Site("tse:SearchToken", session=True),), ends_session=True, spec="TOK-24",
    ),
    OperationRule(
        "tse:FindEvents", "tse:FindEventsResponse", "ter:InvalidToken",
        _scope_sites(), (Site("tse:SearchToken", session=True),), spec="TOK-R5, OQ-32",
    ),
    OperationRule(
        "tse:GetEventSearchResults", "tse:GetEventSearchResultsResponse", "ter:InvalidToken",
        (Site("tse:SearchToken", session=True),),
        (
            Site("tse:ResultList/tt:Result/tt:RecordingToken"),
            Site("tse:ResultList/tt:Result/tt:TrackToken"),
            Site(
                "tse:ResultList/tt:Result/tt:Event/wsnt:Message/tt:Message/tt:Source/tt:SimpleItem",
                source_items=True,
            ),
        ),
        spec="TOK-R5, OQ-32",
    ),
    OperationRule(
        "trp:GetReplayUri", "trp:GetReplayUriResponse", "ter:NoRecording",
        (Site("trp:RecordingToken"),), uris=("trp:Uri",), spec="TOK-25",
    ),
    OperationRule(
        None, "wsnt:Notify", "ter:InvalidArgVal",
        response_sites=(Site(_NOTIFICATION, source_items=True),), spec="TOK-26",
    ),
    OperationRule(
        None, "tev:PullMessagesResponse", "ter:InvalidArgVal",
        response_sites=(Site(_NOTIFICATION, source_items=True),), spec="TOK-26",
    ),
)


_NAME: Final = r"[A-Za-z_][A-Za-z0-9_.-]*"
_STEP: Final = rf"{_NAME}:{_NAME}"
_PATH: Final = re.compile(rf"{_STEP}(?:/{_STEP})*(?:/@{_NAME})?")


def _check_name(prefixed: str) -> None:
    prefix = prefixed.partition(":")[0]
    if re.fullmatch(_STEP, prefixed) is None or prefix not in _NS:
        raise ConfigurationError(
            f"adaption rule name {prefixed!r} must be prefix:Name with a prefix of "
            f"{sorted(_NS)}"
        )


def _clark(prefixed: str) -> str:
    _check_name(prefixed)
    prefix, _, local = prefixed.partition(":")
    return f"{{{_NS[prefix]}}}{local}"


@attrs.frozen(slots=True)
class _CompiledSite:
    site: Site
    xpath: etree.XPath
    attribute: str | None
    fault: str


@attrs.frozen(slots=True)
class _CompiledRule:
    rule: OperationRule
    request_sites: tuple[_CompiledSite, ...]
    response_sites: tuple[_CompiledSite, ...]
    uris: tuple[tuple[str, etree.XPath], ...]


@attrs.frozen(slots=True)
class RuleSet:
    """Compiled rules, keyed by the Clark name of the request / response element."""

    by_request: dict[str, _CompiledRule]
    by_response: dict[str, _CompiledRule]


def _compile_site(site: Site, default_fault: str) -> _CompiledSite:
    if _PATH.fullmatch(site.path) is None:
        raise ConfigurationError(
            f"adaption path {site.path!r} must be prefix:Name steps joined by '/', "
            "optionally ending in '/@attribute'"
        )
    for step in site.path.split("/"):
        if not step.startswith("@"):
            _check_name(step)
    path, attribute = site.path, None
    head, sep, tail = path.rpartition("/@")
    if sep:
        path, attribute = head, tail
    if site.source_items:
        attribute = "Value"
    return _CompiledSite(
        site, etree.XPath(path, namespaces=_NS), attribute, site.fault or default_fault
    )


def compile_rules(rules: tuple[OperationRule, ...] = RULES) -> RuleSet:
    """Compile a rule table once; paths become :class:`lxml.etree.XPath` objects.

    Names and paths use the prefixes tt, tr2, tptz, tse, trp, tev and wsnt;
    anything else is a :class:`~uplink62676.errors.ConfigurationError`.
    """
    by_request: dict[str, _CompiledRule] = {}
    by_response: dict[str, _CompiledRule] = {}
    for rule in rules:
        compiled = _CompiledRule(
            rule,
            tuple(_compile_site(s, rule.fault) for s in rule.request_sites),
            tuple(_compile_site(s, rule.fault) for s in rule.response_sites),
            tuple((p, _compile_site(Site(p), rule.fault).xpath) for p in rule.uris),
        )
        if rule.request is not None:
            by_request[_clark(rule.request)] = compiled
        if rule.response is not None:
            by_response[_clark(rule.response)] = compiled
    return RuleSet(by_request, by_response)


_DEFAULT_RULES: Final = compile_rules(RULES)


_new_tuple: Final = tuple.__new__


class TokenRewrite(NamedTuple):
    """One value the adapter changed: where (the rule path), before and after.

    A named tuple rather than an attrs class: a large response produces
    hundreds of these, and tuple construction is several times cheaper.
    """

    path: str
    before: str
    after: str


@attrs.frozen(slots=True)
class AdaptionResult:
    """What :meth:`TokenAdapter.adapt_request` / ``adapt_response`` did.

    ``envelope`` is the envelope to send on (the input object itself when
    nothing changed).  ``operation`` is the Clark name of the body's first
    element (``None`` without one); ``handled`` is false when no rule covers
    it (passed through unchanged) or the body is a fault.  ``device`` is the
    device the request addresses (``None`` when it carries no token: the
    caller decides, e.g. fans out) or the device a response came from.
    """

    envelope: bytes
    operation: str | None
    handled: bool
    device: str | None
    rewrites: tuple[TokenRewrite, ...] = ()
    uri_rewrites: tuple[TokenRewrite, ...] = ()
    ended_sessions: tuple[str, ...] = ()
    fault: bool = False

    @property
    def changed(self) -> bool:
        """True when a token or a URI was rewritten (the envelope is then a new object)."""
        return bool(self.rewrites or self.uri_rewrites)


@attrs.frozen(slots=True)
class UriContext:
    """What the streaming-proxy hook learns about one URI in a response.

    ``operation`` is the prefixed request name (``tr2:GetStreamUri``,
    ``tr2:GetSnapshotUri``, ``trp:GetReplayUri``); ``tokens`` are the
    (remote, local) token pairs of the adapted request, when given.
    """

    device: str
    operation: str
    uri: str
    tokens: tuple[tuple[str, str], ...] = ()


#: The streaming-proxy hook: returns the URI the client should use.
UriRewriter = Callable[[UriContext], str]


def default_source_item(name: str) -> bool:
    """Which ``Source`` SimpleItems hold tokens: ``*Token`` names and ``Source`` (TOK-26)."""
    return name.endswith("Token") or name == "Source"


def _fault(subcode: str, reason: str) -> SoapFault:
    return SoapFault("env:Sender", ("ter:InvalidArgVal", subcode), reason)


_ENVELOPE: Final = f"{{{ns.ENV}}}Envelope"
_BODY: Final = f"{{{ns.ENV}}}Body"
_FAULT: Final = f"{{{ns.ENV}}}Fault"
_SOAP11_ENVELOPE: Final = f"{{{ns.SOAP11_ENV}}}Envelope"


def _operation(root: etree._Element, *, incoming: bool) -> etree._Element | None:
    if root.tag != _ENVELOPE:
        code = "env:Sender" if incoming else "env:Receiver"
        if root.tag == _SOAP11_ENVELOPE:
            if incoming:
                raise SoapFault("env:VersionMismatch", (), "SOAP 1.1 envelope; ONVIF uses SOAP 1.2")
            raise SoapFault(code, (), "the device answered with a SOAP 1.1 envelope")
        raise SoapFault(code, (), f"not a SOAP 1.2 envelope (root element {root.tag!r})")
    for child in root:
        if child.tag == _BODY:
            for op in child:
                if isinstance(op.tag, str):
                    return op
            return None
    return None


def _as_bytes(envelope: bytes) -> bytes:
    if isinstance(envelope, bytearray | memoryview):
        return bytes(envelope)
    return envelope  # parse_xml refuses anything that is not bytes


def _serialize(root: etree._Element, original: bytes) -> bytes:
    head = original.lstrip(b"\xef\xbb\xbf \t\r\n")[:5]
    if head != b"<?xml":
        return bytes(etree.tostring(root, encoding="UTF-8"))
    declaration = original[: original.find(b"?>")]
    standalone = root.getroottree().docinfo.standalone
    if standalone is None or b"standalone" not in declaration:
        return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=True))
    return bytes(
        etree.tostring(root, encoding="UTF-8", xml_declaration=True, standalone=standalone)
    )


_MESSAGE_SOURCE_PATH: Final = "tt:Source/tt:SimpleItem/@Value"
_MESSAGE_SOURCE_ITEMS: Final = etree.XPath("tt:Source/tt:SimpleItem", namespaces=_NS)


class TokenAdapter:
    """Rewrites tokens in SOAP envelopes for one VSS (tokens.md section 4).

    ``mapper`` holds the remote <-> (device, local) table;
    ``uri_rewriter`` is the streaming proxy (without one, URIs pass
    unchanged); ``rekey_presets`` adapts PTZ preset tokens too (TOK-R5);
    ``source_item`` decides which notification Source items hold tokens;
    ``max_bytes`` bounds the envelopes accepted (large search results may
    need more than the 1 MiB default).
    """

    __slots__ = (
        "_mapper",
        "_max_bytes",
        "_rekey_presets",
        "_rules",
        "_source_item",
        "_uri_rewriter",
    )

    def __init__(
        self,
        mapper: TokenMapper,
        *,
        uri_rewriter: UriRewriter | None = None,
        rekey_presets: bool = True,
        source_item: Callable[[str], bool] = default_source_item,
        rules: RuleSet | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._mapper = mapper
        self._max_bytes = max_bytes
        self._uri_rewriter = uri_rewriter
        self._rekey_presets = rekey_presets
        self._source_item = source_item
        self._rules = rules if rules is not None else _DEFAULT_RULES

    @property
    def mapper(self) -> TokenMapper:
        """The token table this adapter reads and extends."""
        return self._mapper

    def _elements(self, site: _CompiledSite, op: etree._Element) -> list[etree._Element]:
        # Every compiled path selects elements only (attributes are read from them).
        found: list[etree._Element] = site.xpath(op)  # type: ignore[assignment]
        if site.site.source_items:
            pick = self._source_item
            return [e for e in found if pick(e.get("Name") or "")]
        return found

    def adapt_message(self, message: etree._Element, *, device: str) -> list[TokenRewrite]:
        """Rewrite the token Source items of one ``tt:Message`` element in place (TOK-26).

        For an event service that builds its own notifications from a device's
        messages rather than forwarding whole envelopes.
        """
        rewrites: list[TokenRewrite] = []
        pick = self._source_item
        found: list[etree._Element] = _MESSAGE_SOURCE_ITEMS(message)  # type: ignore[assignment]
        for item in found:
            value = item.get("Value")
            if value and pick(item.get("Name") or ""):
                remote = self._mapper.to_remote(device, value)
                item.set("Value", remote)
                rewrites.append(TokenRewrite(_MESSAGE_SOURCE_PATH, value, remote))
        self._mapper.flush()
        return rewrites

    def adapt_request(self, envelope: bytes, *, device: str | None = None) -> AdaptionResult:
        """Rewrite incoming remote tokens to local ones (client -> VSS -> device).

        Every token must be one this VSS issued, and all must belong to one
        device (TOK-11) -- ``device``, when given; otherwise the operation's
        fault is raised.  The result names the device to forward to.
        """
        envelope = _as_bytes(envelope)
        root = parse_xml(envelope, max_bytes=self._max_bytes)
        op = _operation(root, incoming=True)
        if op is None:
            return AdaptionResult(envelope, None, False, device)
        tag = op.tag
        assert isinstance(tag, str)
        rule = self._rules.by_request.get(tag)
        if rule is None:
            return AdaptionResult(envelope, tag, False, device)
        target = device
        rewrites: list[TokenRewrite] = []
        sessions: list[str] = []
        lookup = self._mapper.to_local
        for site in rule.request_sites:
            if site.site.preset and not self._rekey_presets:
                continue
            attribute = site.attribute
            for elem in self._elements(site, op):
                value = (elem.get(attribute) if attribute else elem.text) or ""
                ref = lookup(value) if value else None
                if ref is None:
                    raise _fault(
                        site.fault,
                        f"unknown token {value!r} in {site.site.path} (tokens.md section 4)",
                    )
                if target is None:
                    target = ref.device
                elif ref.device != target:
                    raise _fault(
                        site.fault,
                        f"token {value!r} in {site.site.path} belongs to another device than "
                        "the other tokens of this request (TOK-11)",
                    )
                if attribute:
                    elem.set(attribute, ref.token)
                else:
                    elem.text = ref.token
                rewrites.append(TokenRewrite(site.site.path, value, ref.token))
                if site.site.session and rule.rule.ends_session:
                    sessions.append(value)
        for remote in sessions:
            self._mapper.end_session(remote)
        out = _serialize(root, envelope) if rewrites else envelope
        return AdaptionResult(
            out, tag, True, target, tuple(rewrites), ended_sessions=tuple(sessions)
        )

    def adapt_response(
        self, envelope: bytes, *, device: str, request: AdaptionResult | None = None
    ) -> AdaptionResult:
        """Rewrite outgoing local tokens of ``device`` to remote ones (device -> VSS -> client).

        Also handles notifications the VSS forwards (``wsnt:Notify``,
        ``tev:PullMessagesResponse``: Source items, TOK-26).  URIs go through
        the streaming-proxy hook; ``request`` (the adapted request) gives the
        hook the request's tokens.  A fault body passes through unchanged.
        A device seen for the first time is registered with the mapper's
        default prefix (:class:`~uplink62676.errors.ConfigurationError` when
        that prefix is not usable).
        """
        envelope = _as_bytes(envelope)
        root = parse_xml(envelope, max_bytes=self._max_bytes)
        op = _operation(root, incoming=False)
        if op is None:
            return AdaptionResult(envelope, None, False, device)
        tag = op.tag
        assert isinstance(tag, str)
        if tag == _FAULT:
            return AdaptionResult(envelope, tag, False, device, fault=True)
        rule = self._rules.by_response.get(tag)
        if rule is None:
            return AdaptionResult(envelope, tag, False, device)
        rewrites: list[TokenRewrite] = []
        add = rewrites.append
        to_remote = self._mapper.to_remote
        known = self._mapper.known_remote  # fast path: tokens mapped before
        for site in rule.response_sites:
            if site.site.preset and not self._rekey_presets:
                continue
            attribute = site.attribute
            session = site.site.session
            path = site.site.path
            for elem in self._elements(site, op):
                value = elem.get(attribute) if attribute else elem.text
                if not value:
                    continue  # the empty token addresses nothing (TOK-R1)
                remote = known.get((device, value)) or to_remote(device, value, session=session)
                if attribute:
                    elem.set(attribute, remote)
                else:
                    elem.text = remote
                add(_new_tuple(TokenRewrite, (path, value, remote)))
        uri_rewrites = self._rewrite_uris(rule, op, device, request)
        self._mapper.flush()
        changed = bool(rewrites or uri_rewrites)
        out = _serialize(root, envelope) if changed else envelope
        return AdaptionResult(out, tag, True, device, tuple(rewrites), tuple(uri_rewrites))

    def _rewrite_uris(
        self,
        rule: _CompiledRule,
        op: etree._Element,
        device: str,
        request: AdaptionResult | None,
    ) -> list[TokenRewrite]:
        hook = self._uri_rewriter
        if hook is None or not rule.uris:
            return []
        tokens = tuple((r.before, r.after) for r in request.rewrites) if request else ()
        name = rule.rule.request or ""
        out: list[TokenRewrite] = []
        for path, xpath in rule.uris:
            found = xpath(op)
            assert isinstance(found, list)
            for elem in found:
                if not isinstance(elem, etree._Element):
                    continue
                uri = elem.text or ""
                new = hook(UriContext(device, name, uri, tokens))
                if not isinstance(new, str):
                    raise SoapFault(
                        "env:Receiver", (), f"streaming proxy returned {type(new).__name__}"
                    )
                if new != uri:
                    try:
                        elem.text = new
                    except ValueError:
                        raise SoapFault(
                            "env:Receiver", (), "streaming proxy returned a URI XML cannot carry"
                        ) from None
                    out.append(TokenRewrite(path, uri, new))
        return out


def adapt_request(
    envelope: bytes,
    mapper: TokenMapper,
    *,
    device: str | None = None,
    rekey_presets: bool = True,
) -> AdaptionResult:
    """One-off :meth:`TokenAdapter.adapt_request`."""
    adapter = TokenAdapter(mapper, rekey_presets=rekey_presets)
    return adapter.adapt_request(envelope, device=device)


def adapt_response(
    envelope: bytes,
    mapper: TokenMapper,
    *,
    device: str,
    uri_rewriter: UriRewriter | None = None,
    request: AdaptionResult | None = None,
    rekey_presets: bool = True,
) -> AdaptionResult:
    """One-off :meth:`TokenAdapter.adapt_response`."""
    adapter = TokenAdapter(mapper, uri_rewriter=uri_rewriter, rekey_presets=rekey_presets)
    return adapter.adapt_response(envelope, device=device, request=request)
