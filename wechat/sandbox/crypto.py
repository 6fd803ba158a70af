"""WeChat's message signatures and ciphers, and WeChat Pay v3's, written from the spec.

Deliberately independent of wechatpy/wechatpayv3 so the tests, which use those libraries on
the other side, check the sandbox against them rather than against itself.
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography import x509
from cryptography.x509 import load_pem_x509_certificate
from cryptography.x509.oid import NameOID

BLOCK = 32  # WeChat pads to 32-byte blocks, not AES's 16


class CryptoError(Exception):
    """A signature or ciphertext that does not check out."""


def sha1_signature(*parts: str) -> str:
    """WeChat's signature: sha1 of the sorted parts joined with nothing."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def nonce_str(length: int = 10) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


class MessageCrypto:
    """Safe-mode message encryption (AES-256-CBC, IV = key[:16], PKCS#7 with 32-byte blocks)."""

    def __init__(self, token: str, encoding_aes_key: str, appid: str):
        self.token = token
        self.key = base64.b64decode(encoding_aes_key + "=")
        self.appid = appid

    def encrypt(self, xml: str, random_prefix: bytes | None = None) -> str:
        """`random_prefix` (16 bytes) only to reproduce WeChat's published vectors."""
        text = xml.encode()
        prefix = os.urandom(16) if random_prefix is None else random_prefix
        if len(prefix) != 16:
            raise ValueError("the random prefix is 16 bytes")
        plain = prefix + struct.pack(">I", len(text)) + text + self.appid.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        try:
            decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
            plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
        except ValueError as exc:
            raise CryptoError(f"cannot decrypt: {exc}") from exc
        pad = plain[-1]
        if not 1 <= pad <= BLOCK:
            raise CryptoError("bad padding")
        plain = plain[16:-pad]
        (length,) = struct.unpack(">I", plain[:4])
        xml, appid = plain[4 : 4 + length], plain[4 + length :]
        if appid.decode(errors="replace") != self.appid:
            raise CryptoError(f"appid in the ciphertext is {appid!r}, expected {self.appid}")
        return xml.decode()

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return sha1_signature(self.token, timestamp, nonce, encrypted)


# --- WeChat Pay v3 ---------------------------------------------------------------------


def generate_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_key_pem(key) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def platform_certificate(key: rsa.RSAPrivateKey, not_before, not_after) -> str:
    """A WeChat Pay platform certificate (PEM) for `key`, as WeChat Pay issues them: a 40-hex-
    digit serial, subject "Tenpay.com sign", issued by "Tenpay.com Root CA" (here a throw-away
    root key of the sandbox's own, so no chain check can pass by accident)."""
    def name(common_name: str) -> x509.Name:
        return x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Tenpay.com CA Center"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ])

    root = generate_rsa_key()
    # 40 hex digits and at most 20 DER octets: a positive 159-bit number with bit 156 set.
    serial = (1 << 156) | secrets.randbits(156)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name("Tenpay.com sign")).issuer_name(name("Tenpay.com Root CA"))
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(not_before).not_valid_after(not_after)
        .sign(root, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def certificate_serial(certificate) -> str:
    """A certificate's serial as WeChat Pay writes it: upper-case hexadecimal."""
    return format(certificate.serial_number, "X")


def load_any_public_key(pem: str):
    """The public key in a PEM private key, public key or certificate."""
    data = pem.encode()
    if b"CERTIFICATE" in data:
        return load_pem_x509_certificate(data).public_key()
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(public_key, message: str, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def aead_encrypt(apiv3_key: str, plaintext: str, associated_data: str) -> dict:
    """WeChat Pay's encrypted resource: AES-256-GCM, 12-character nonce, b64(ct || tag)."""
    nonce = secrets.token_hex(6)  # 12 ASCII characters, used as bytes like WeChat Pay does
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext.encode(), associated_data.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }
