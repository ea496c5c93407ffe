"""The byte-exact transcripts of uplink.md section 11 (built for the digest)."""

from __future__ import annotations


def _hex(text: str) -> bytes:
    return bytes.fromhex(" ".join(text.split()))


A1 = (
    b"GET /uplink HTTP/1.1\r\nHost: cloud.example.com\r\nConnection: Upgrade\r\n"
    b"Upgrade: h2c-reverse\r\n\r\n"
)
A2 = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n"
A3 = _hex("""
50 52 49 20 2a 20 48 54 54 50 2f 32 2e 30 0d 0a 0d 0a 53 4d 0d 0a 0d 0a 00 00 06 04 00 00 00 00
00 00 02 00 00 00 00""")
A4_SETTINGS = _hex("00 00 0c 04 00 00 00 00 00 00 03 00 00 00 10 00 08 00 00 00 01")
SETTINGS_ACK = _hex("00 00 00 04 01 00 00 00 00")
A5_HEADERS = _hex("""
00 00 97 01 04 00 00 00 01 83 87 04 15 2f 6f 6e 76 69 66 2f 75 70 6c 69 6e 6b 5f 73 65 72 76 69
63 65 01 14 33 32 30 31 30 30 30 31 30 37 31 33 32 31 30 30 38 30 31 35 0f 10 5f 61 70 70 6c 69
63 61 74 69 6f 6e 2f 73 6f 61 70 2b 78 6d 6c 3b 20 63 68 61 72 73 65 74 3d 75 74 66 2d 38 3b 20
61 63 74 69 6f 6e 3d 22 68 74 74 70 3a 2f 2f 77 77 77 2e 6f 6e 76 69 66 2e 6f 72 67 2f 76 65 72
31 30 2f 75 70 6c 69 6e 6b 2f 77 73 64 6c 2f 47 65 74 55 70 6c 69 6e 6b 73 22 0f 0d 03 32 30 39""")
A6_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl"><env:Body><tup:GetUplinks/>'
    b"</env:Body></env:Envelope>"
)
A6 = _hex("00 00 d1 00 01 00 00 00 01") + A6_BODY
A7_HEADERS = _hex("""
00 00 2d 01 04 00 00 00 01 88 0f 10 23 61 70 70 6c 69 63 61 74 69 6f 6e 2f 73 6f 61 70 2b 78 6d
6c 3b 20 63 68 61 72 73 65 74 3d 75 74 66 2d 38 0f 0d 03 34 37 33""")
A8_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl"><env:Body><tup:GetUplinksResponse>'
    b"<tup:Configuration><tup:RemoteAddress>https://cloud.example.com/uplink</tup:RemoteAddress>"
    b"<tup:CertificateID>devcert-01</tup:CertificateID><tup:UserLevel>Operator</tup:UserLevel>"
    b"<tup:Status>Connected</tup:Status></tup:Configuration></tup:GetUplinksResponse>"
    b"</env:Body></env:Envelope>"
)
A8 = _hex("00 01 d9 00 01 00 00 00 01") + A8_BODY
B1 = (
    b"GET /uplink HTTP/1.1\r\nHost: cloud.example.com\r\nConnection: Upgrade\r\n"
    b"Upgrade: h2c-reverse\r\nAuthorization: Bearer 8sYq2-Tz.Kf0wLm_Q4\r\n\r\n"
)
E_PING = _hex("00 00 08 06 00 00 00 00 00 55 50 4c 4b 00 00 00 01")
E_PING_ACK = _hex("00 00 08 06 01 00 00 00 00 55 50 4c 4b 00 00 00 01")
E_GOAWAY = _hex("00 00 08 07 00 00 00 00 00 00 00 00 01 00 00 00 00")
TOKEN = "8sYq2-Tz.Kf0wLm_Q4"
