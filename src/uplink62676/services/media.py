"""Media (ver10, ``trt``) and Media2 (ver20, ``tr2``) for a fixed list of profiles (media.md §1-3).

Sans-I/O: SOAP bytes and the request origin in, a
:class:`~uplink62676.soap.SoapResponse` out.  Both services answer
GetServiceCapabilities, GetProfiles, GetStreamUri and GetSnapshotUri (Media
also GetProfile) for the :class:`MediaProfile` values they are given; anything
else gets ``ter:ActionNotSupported``.  Media is what onvif-zeep-async (Home
Assistant) calls, Media2 what newer clients call.

Stream URIs are ``rtsp://<origin host>:<rtsp_port><stream path>`` (UPL-R21:
under an uplink the origin's host; the cloud's RTSP gateway maps them), or for
RTSP over HTTP ``<origin><stream path>`` (MED-6, MED-R2); snapshot URIs are
``<origin><snapshot path>`` (DEV-29, DEV-R14).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Final
from urllib.parse import quote

import attrs
from lxml import etree

from ..errors import ConfigurationError, SoapFault
from ..namespaces import TR2, TRT, TT
from ..soap import Envelope, SoapResponse, generic_fault, handle_request
from .access import DEFAULT_POLICY, AccessClass, AccessPolicy
from .device import origin_base, origin_host

__all__ = [
    "MEDIA2_PROTOCOLS",
    "MediaProfile",
    "MediaService",
    "media_access_class",
]

#: Media2 ``tr2:TransportProtocol`` values answered, and the URI scheme kind they get (§3).
MEDIA2_PROTOCOLS: Final[Mapping[str, str]] = MappingProxyType({
    "RtspUnicast": "rtsp", "RTSP": "rtsp", "RtspOverHttp": "http"})
#: Media ver10 ``tt:Transport/tt:Protocol`` (Unicast) -> URI kind (media.md §3 mapping).
_MEDIA1_PROTOCOLS: Final = MappingProxyType({"UDP": "rtsp", "RTSP": "rtsp", "HTTP": "http"})
#: Encodings ver10's ``tt:VideoEncoding`` can express.
_MEDIA1_ENCODINGS: Final = frozenset({"JPEG", "MPEG4", "H264"})
_TYPES: Final = frozenset({"All", "VideoSource", "VideoEncoder", "AudioSource", "AudioEncoder",
                           "AudioOutput", "AudioDecoder", "Metadata", "Analytics", "PTZ",
                           "Receiver"})


def media_access_class(operation: str) -> str:
    """Access class of a Media/Media2 operation: capabilities ``PRE_AUTH``, else ``READ_MEDIA``."""
    local = operation.rpartition("}")[2]
    cls = AccessClass.PRE_AUTH if local == "GetServiceCapabilities" else AccessClass.READ_MEDIA
    return cls.value


def _positive(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{attribute.name} must be a positive integer, got {value!r}")


def _path(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigurationError(f"{attribute.name} must be a path starting with '/', got "
                                 f"{value!r}")


def _token(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise ConfigurationError(f"{attribute.name} must be 1..64 characters, got {value!r}")


@attrs.frozen(slots=True)
class MediaProfile:
    """One media profile: a video source, one video encoder and where its stream lives.

    ``stream_path`` is the RTSP path on the camera (``/media/main``);
    ``snapshot_path`` defaults to ``/onvif/snapshot?profile=<token>``.
    Configuration tokens default to ``<video source>_cfg`` and ``<token>_enc``.
    """

    token: str = attrs.field(validator=_token)
    name: str = attrs.field(converter=str)
    video_source_token: str = attrs.field(validator=_token)
    stream_path: str = attrs.field(validator=_path)
    encoding: str = "H264"
    width: int = attrs.field(default=1920, validator=_positive)
    height: int = attrs.field(default=1080, validator=_positive)
    frame_rate: int = attrs.field(default=25, validator=_positive)
    bitrate: int = attrs.field(default=4096, validator=_positive)  # kbit/s
    gov_length: int = attrs.field(default=50, validator=_positive)
    snapshot_path: str = attrs.field(validator=_path)
    fixed: bool = True
    video_source_configuration_token: str = attrs.field(validator=_token)
    video_encoder_token: str = attrs.field(validator=_token)

    @snapshot_path.default
    def _snapshot_default(self) -> str:
        return f"/onvif/snapshot?profile={quote(self.token, safe=':')}"

    @video_source_configuration_token.default
    def _vsc_default(self) -> str:
        return f"{self.video_source_token}_cfg"

    @video_encoder_token.default
    def _enc_default(self) -> str:
        return f"{self.token}_enc"


def _sub(parent: etree._Element, tag: str, text: str | None = None,
         **attrib: str) -> etree._Element:
    e = etree.SubElement(parent, tag, attrib)
    if text is not None:
        e.text = text
    return e


_T = "{" + TT + "}"
_M = "{" + TRT + "}"
_M2 = "{" + TR2 + "}"


def _no_profile() -> SoapFault:
    return SoapFault("env:Sender", ("ter:InvalidArgVal", "ter:NoProfile"),
                     "The requested profile does not exist")


def _invalid_stream_setup() -> SoapFault:
    return SoapFault("env:Sender", ("ter:InvalidArgVal", "ter:InvalidStreamSetup"),
                     "The requested stream setup is not supported")


def _required_text(parent: etree._Element, tag: str) -> str:
    text = parent.findtext(tag)
    if text is None or not text.strip():
        raise generic_fault("ter:InvalidArgs")
    return text.strip()


Dispatch = Callable[[etree._Element, str, str], etree._Element]


class MediaService:
    """Media and Media2 for ``profiles``; :meth:`handle_media` and :meth:`handle_media2`.

    ``rtsp_port`` is the port of the camera's RTSP server; ``snapshots``
    whether GetSnapshotUri is offered (capability ``SnapshotUri``, MED-7).
    ``policy`` checks ``requester`` (``PRE_AUTH`` / ``READ_MEDIA``).
    """

    def __init__(self, profiles: Sequence[MediaProfile], *, rtsp_port: int = 554,
                 snapshots: bool = True, policy: AccessPolicy = DEFAULT_POLICY) -> None:
        self.profiles: tuple[MediaProfile, ...] = tuple(profiles)
        for p in self.profiles:
            if not isinstance(p, MediaProfile):
                raise ConfigurationError(f"profiles must hold MediaProfile values, got {p!r}")
        self._by_token = {p.token: p for p in self.profiles}
        if len(self._by_token) != len(self.profiles):
            raise ConfigurationError("profile tokens must be unique")
        if not isinstance(rtsp_port, int) or not 0 < rtsp_port < 65536:
            raise ConfigurationError(f"rtsp_port must be 1..65535, got {rtsp_port!r}")
        self.rtsp_port = rtsp_port
        self.snapshots = snapshots
        self.policy = policy
        uses: dict[str, int] = {}
        for p in self.profiles:
            key = p.video_source_configuration_token
            uses[key] = uses.get(key, 0) + 1
        self._source_uses = uses
        self._media1: Mapping[str, Dispatch] = {
            "GetServiceCapabilities": lambda _b, _o, _a: self._wrap1(
                "GetServiceCapabilitiesResponse", self.media_capabilities()),
            "GetProfiles": self._profiles1,
            "GetProfile": self._profile1,
            "GetStreamUri": self._stream_uri1,
            "GetSnapshotUri": self._snapshot_uri1,
        }
        self._media2: Mapping[str, Dispatch] = {
            "GetServiceCapabilities": lambda _b, _o, _a: self._wrap2(
                "GetServiceCapabilitiesResponse", self.media2_capabilities()),
            "GetProfiles": self._profiles2,
            "GetStreamUri": self._stream_uri2,
            "GetSnapshotUri": self._snapshot_uri2,
        }

    # ------------------------------------------------------------------ requests

    def handle_media(self, body: bytes, content_type: str | None, *, scheme: str | None,
                     authority: str | None,
                     requester: str | Sequence[str] | None = None) -> SoapResponse:
        """Answer one Media (ver10, ``trt``) request; URIs from ``scheme``/``authority``."""
        return self._handle(self._media1, TRT, body, content_type, scheme=scheme,
                            authority=authority, requester=requester)

    def handle_media2(self, body: bytes, content_type: str | None, *, scheme: str | None,
                      authority: str | None,
                      requester: str | Sequence[str] | None = None) -> SoapResponse:
        """Answer one Media2 (ver20, ``tr2``) request; URIs from ``scheme``/``authority``."""
        return self._handle(self._media2, TR2, body, content_type, scheme=scheme,
                            authority=authority, requester=requester)

    def _handle(self, table: Mapping[str, Dispatch], namespace: str, body: bytes,
                content_type: str | None, *, scheme: str | None, authority: str | None,
                requester: str | Sequence[str] | None) -> SoapResponse:
        base = origin_base(scheme, authority)
        host = origin_host(authority)

        def dispatch(envelope: Envelope) -> etree._Element:
            ns, _, local = envelope.operation[1:].partition("}")
            handler = table.get(local) if ns == namespace else None
            if handler is None:
                raise generic_fault("ter:ActionNotSupported")
            if requester is not None:
                self.policy.check(requester, AccessClass(media_access_class(local)))
            return handler(envelope.body, base, host)

        return handle_request(body, content_type, dispatch)

    def _profile(self, token: str) -> MediaProfile:
        profile = self._by_token.get(token)
        if profile is None:
            raise _no_profile()
        return profile

    def _uri(self, profile: MediaProfile, kind: str, base: str, host: str) -> str:
        if kind == "http":
            return base + profile.stream_path  # MED-6, MED-R2: the web service's port
        return f"rtsp://{host}:{self.rtsp_port}{profile.stream_path}"

    # ------------------------------------------------------------------ capabilities

    def media_capabilities(self) -> etree._Element:
        """``trt:Capabilities`` (media.wsdl ver10), also for GetServices (DEV-7)."""
        caps = etree.Element(_M + "Capabilities", nsmap={"trt": TRT},
                             SnapshotUri="true" if self.snapshots else "false",
                             Rotation="false", VideoSourceMode="false", OSD="false")
        _sub(caps, _M + "ProfileCapabilities", MaximumNumberOfProfiles=str(len(self.profiles)))
        _sub(caps, _M + "StreamingCapabilities", RTPMulticast="false", RTP_TCP="false",
             RTP_RTSP_TCP="true", NonAggregateControl="false", NoRTSPStreaming="false")
        return caps

    def media2_capabilities(self) -> etree._Element:
        """``tr2:Capabilities`` (``tr2:Capabilities2``, media.md §3.2), also for GetServices."""
        caps = etree.Element(_M2 + "Capabilities", nsmap={"tr2": TR2},
                             SnapshotUri="true" if self.snapshots else "false",
                             Rotation="false", VideoSourceMode="false", OSD="false")
        _sub(caps, _M2 + "ProfileCapabilities", MaximumNumberOfProfiles=str(len(self.profiles)),
             ConfigurationsSupported="VideoSource VideoEncoder")
        _sub(caps, _M2 + "StreamingCapabilities", RTSPStreaming="true", RTPMulticast="false",
             RTP_RTSP_TCP="true", NonAggregateControl="false", AutoStartMulticast="false",
             SecureRTSPStreaming="false")
        return caps

    # ------------------------------------------------------------------ configurations

    def _video_source(self, parent: etree._Element, tag: str, p: MediaProfile) -> None:
        vsc = _sub(parent, tag, token=p.video_source_configuration_token)
        _sub(vsc, _T + "Name", f"{p.video_source_token} configuration")
        _sub(vsc, _T + "UseCount", str(self._source_uses[p.video_source_configuration_token]))
        _sub(vsc, _T + "SourceToken", p.video_source_token)
        _sub(vsc, _T + "Bounds", x="0", y="0", width=str(p.width), height=str(p.height))

    @staticmethod
    def _multicast(parent: etree._Element) -> None:
        mc = _sub(parent, _T + "Multicast")
        addr = _sub(mc, _T + "Address")
        _sub(addr, _T + "Type", "IPv4")
        _sub(addr, _T + "IPv4Address", "0.0.0.0")  # noqa: S104 - no multicast group configured
        _sub(mc, _T + "Port", "0")
        _sub(mc, _T + "TTL", "1")
        _sub(mc, _T + "AutoStart", "false")

    def _encoder1(self, parent: etree._Element, p: MediaProfile) -> None:
        """``tt:VideoEncoderConfiguration`` in onvif.xsd order (Media ver10)."""
        enc = _sub(parent, _T + "VideoEncoderConfiguration", token=p.video_encoder_token)
        _sub(enc, _T + "Name", f"{p.name} encoder")
        _sub(enc, _T + "UseCount", "1")
        _sub(enc, _T + "Encoding", p.encoding)
        res = _sub(enc, _T + "Resolution")
        _sub(res, _T + "Width", str(p.width))
        _sub(res, _T + "Height", str(p.height))
        _sub(enc, _T + "Quality", "5")
        rc = _sub(enc, _T + "RateControl")
        _sub(rc, _T + "FrameRateLimit", str(p.frame_rate))
        _sub(rc, _T + "EncodingInterval", "1")
        _sub(rc, _T + "BitrateLimit", str(p.bitrate))
        if p.encoding == "H264":
            h264 = _sub(enc, _T + "H264")
            _sub(h264, _T + "GovLength", str(p.gov_length))
            _sub(h264, _T + "H264Profile", "Main")
        self._multicast(enc)
        _sub(enc, _T + "SessionTimeout", "PT60S")

    def _encoder2(self, parent: etree._Element, p: MediaProfile) -> None:
        """``tt:VideoEncoder2Configuration`` in onvif.xsd order (Media2)."""
        attrib = {"token": p.video_encoder_token, "GovLength": str(p.gov_length)}
        if p.encoding in ("H264", "H265"):
            attrib["Profile"] = "Main"
        enc = _sub(parent, _M2 + "VideoEncoder", **attrib)
        _sub(enc, _T + "Name", f"{p.name} encoder")
        _sub(enc, _T + "UseCount", "1")
        _sub(enc, _T + "Encoding", p.encoding)
        res = _sub(enc, _T + "Resolution")
        _sub(res, _T + "Width", str(p.width))
        _sub(res, _T + "Height", str(p.height))
        rc = _sub(enc, _T + "RateControl")
        _sub(rc, _T + "FrameRateLimit", str(p.frame_rate))
        _sub(rc, _T + "BitrateLimit", str(p.bitrate))
        _sub(enc, _T + "Quality", "5")

    # ------------------------------------------------------------------ Media (ver10)

    @staticmethod
    def _wrap1(name: str, child: etree._Element) -> etree._Element:
        resp = etree.Element(_M + name, nsmap={"trt": TRT, "tt": TT})
        resp.append(child)
        return resp

    def _profile_element1(self, parent: etree._Element, tag: str, p: MediaProfile) -> None:
        prof = _sub(parent, tag, token=p.token, fixed="true" if p.fixed else "false")
        _sub(prof, _T + "Name", p.name)
        self._video_source(prof, _T + "VideoSourceConfiguration", p)
        if p.encoding in _MEDIA1_ENCODINGS:  # H265 and others exist only in Media2
            self._encoder1(prof, p)

    def _profiles1(self, _body: etree._Element, _base: str, _host: str) -> etree._Element:
        resp = etree.Element(_M + "GetProfilesResponse", nsmap={"trt": TRT, "tt": TT})
        for p in self.profiles:
            self._profile_element1(resp, _M + "Profiles", p)
        return resp

    def _profile1(self, body: etree._Element, _base: str, _host: str) -> etree._Element:
        p = self._profile(_required_text(body, _M + "ProfileToken"))
        resp = etree.Element(_M + "GetProfileResponse", nsmap={"trt": TRT, "tt": TT})
        self._profile_element1(resp, _M + "Profile", p)
        return resp

    @staticmethod
    def _media_uri(name: str, uri: str) -> etree._Element:
        resp = etree.Element(_M + name, nsmap={"trt": TRT, "tt": TT})
        mu = _sub(resp, _M + "MediaUri")
        _sub(mu, _T + "Uri", uri)
        _sub(mu, _T + "InvalidAfterConnect", "false")
        _sub(mu, _T + "InvalidAfterReboot", "false")
        _sub(mu, _T + "Timeout", "PT0S")
        return resp

    def _stream_uri1(self, body: etree._Element, base: str, host: str) -> etree._Element:
        """Media ver10: ``tt:StreamSetup`` (Stream + Transport/Protocol) mapped as media.md §3."""
        setup = body.find(_M + "StreamSetup")
        if setup is None:
            raise generic_fault("ter:InvalidArgs")
        stream = _required_text(setup, _T + "Stream")
        transport = setup.find(_T + "Transport")
        if transport is None:
            raise generic_fault("ter:InvalidArgs")
        protocol = _required_text(transport, _T + "Protocol")
        p = self._profile(_required_text(body, _M + "ProfileToken"))
        kind = _MEDIA1_PROTOCOLS.get(protocol)
        if stream != "RTP-Unicast" or kind is None:
            raise _invalid_stream_setup()
        return self._media_uri("GetStreamUriResponse", self._uri(p, kind, base, host))

    def _snapshot_path(self, body: etree._Element, namespace: str) -> str:
        """The snapshot path of the request's ``ProfileToken`` (both Media versions)."""
        p = self._profile(_required_text(body, namespace + "ProfileToken"))
        if not self.snapshots:
            raise generic_fault("ter:ActionNotSupported")
        return p.snapshot_path

    def _snapshot_uri1(self, body: etree._Element, base: str, _host: str) -> etree._Element:
        return self._media_uri("GetSnapshotUriResponse", base + self._snapshot_path(body, _M))

    # ------------------------------------------------------------------ Media2 (ver20)

    @staticmethod
    def _wrap2(name: str, child: etree._Element) -> etree._Element:
        resp = etree.Element(_M2 + name, nsmap={"tr2": TR2, "tt": TT})
        resp.append(child)
        return resp

    def _profiles2(self, body: etree._Element, _base: str, _host: str) -> etree._Element:
        """MED-1, MED-2, MED-R1: ``Token`` picks one profile, ``Type`` the configurations."""
        token = body.findtext(_M2 + "Token")
        chosen = [self._profile(token.strip())] if token is not None else list(self.profiles)
        types = {(t.text or "").strip() for t in body.iter(_M2 + "Type")} & _TYPES
        if "All" in types:
            types = {"VideoSource", "VideoEncoder"}
        resp = etree.Element(_M2 + "GetProfilesResponse", nsmap={"tr2": TR2, "tt": TT})
        for p in chosen:
            prof = _sub(resp, _M2 + "Profiles", token=p.token,
                        fixed="true" if p.fixed else "false")
            _sub(prof, _M2 + "Name", p.name)
            if types & {"VideoSource", "VideoEncoder"}:
                confs = _sub(prof, _M2 + "Configurations")
                if "VideoSource" in types:
                    self._video_source(confs, _M2 + "VideoSource", p)
                if "VideoEncoder" in types:
                    self._encoder2(confs, p)
        return resp

    @staticmethod
    def _uri2(name: str, uri: str) -> etree._Element:
        resp = etree.Element(_M2 + name, nsmap={"tr2": TR2})
        _sub(resp, _M2 + "Uri", uri)
        return resp

    def _stream_uri2(self, body: etree._Element, base: str, host: str) -> etree._Element:
        """Media2 §3: ``Protocol`` + ``ProfileToken``; unsupported protocols InvalidStreamSetup."""
        protocol = _required_text(body, _M2 + "Protocol")
        p = self._profile(_required_text(body, _M2 + "ProfileToken"))
        kind = MEDIA2_PROTOCOLS.get(protocol)
        if kind is None:
            raise _invalid_stream_setup()
        return self._uri2("GetStreamUriResponse", self._uri(p, kind, base, host))

    def _snapshot_uri2(self, body: etree._Element, base: str, _host: str) -> etree._Element:
        """MED-7: a snapshot URI under the request origin."""
        return self._uri2("GetSnapshotUriResponse", base + self._snapshot_path(body, _M2))
