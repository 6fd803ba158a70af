"""WeChat Pay API v3 (wechatpayv3): JSAPI orders, wx.requestPayment, query, close, refunds and
their query, the daily trade bill (download and parse), the platform certificates, and
verification of payment and refund notifications (WECHAT.md §8).

The client is pointed at ``WECHATPAY_API_BASE`` (the sandbox in the demo and the tests) by
setting wechatpayv3's gateway attribute. Keys:

- merchant private key: ``WECHATPAY_PRIVATE_KEY_PATH``. When it is unset outside production,
  a development key is generated once into ``instance/wechatpay_merchant_key.pem`` (the
  sandbox checks request signatures only when told the merchant key path); production
  refuses to pay without it.
- merchant API certificate serial: ``WECHATPAY_CERT_SERIAL_NO`` (``openssl x509 -in
  apiclient_cert.pem -noout -serial``), the ``serial_no`` of every request's Authorization;
  WeChat Pay answers 401 SIGN_ERROR to any other. Development uses a serial the sandbox has
  registered for its development key; there is no fallback.
- how WeChat Pay signs (``WECHATPAY_VERIFY_MODE``): ``public_key`` — the WeChat Pay public key,
  ``WECHATPAY_PUBLIC_KEY_PATH`` (PEM) and ``WECHATPAY_PUBLIC_KEY_ID`` or ``<path>.id`` next to
  the PEM (the sandbox writes both), read on use; ``platform_cert`` — a merchant that never
  switched: platform certificates from ``GET /v3/certificates``; ``both`` — a merchant
  switching from certificates to the public key, who receives notifications signed either
  way for days.

Notifications are verified here rather than with ``WeChatPay.callback``: that method calls
``GET /v3/certificates`` whenever a request names an unknown serial, which would let anybody
make us call WeChat Pay for each forged request. We accept a serial of the configured kinds
(the public key id; a platform certificate, looked up again at most once a minute), a fresh
timestamp, a valid RSA signature — WeChat Pay's own signature probes (``WECHATPAY/SIGNTEST/``)
are refused like any bad signature — and a resource that decrypts (AEAD_AES_256_GCM).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import load_pem_x509_certificate
from flask import current_app
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import aes_decrypt, build_authorization, load_private_key, load_public_key, rsa_verify

from app.clock import BEIJING, utcnow  # WeChat Pay's times are Beijing time
from app.services.billing import ORDER_TTL, credit_payment, record_refund_result
from app.services.payments import GatewayUnavailable

log = logging.getLogger(__name__)

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
NOTIFY_MAX_SKEW = 300          # seconds; WeChat Pay signs each (re)delivery afresh
DEV_MERCHANT_KEY = "wechatpay_merchant_key.pem"
VERIFY_MODES = {"public_key": ("public_key",), "platform_cert": ("platform_cert",),
                "both": ("public_key", "platform_cert")}
SIGN_PROBE_PREFIX = "WECHATPAY/SIGNTEST/"     # WeChat Pay's deliberate bad signatures
# Platform certificates: shared by every process in Redis, refreshed well within WeChat Pay's
# "less than 12 hours" (a new certificate is listed 24 h before it is used), and looked up
# again for an unknown serial at most once a minute.
CERTS_KEY = "wechatpay:platform-certs:{mchid}"
CERTS_ASKED_KEY = "wechatpay:platform-certs:{mchid}:asked"
CERTS_REFRESH_AFTER = 6 * 3600
CERTS_ASK_AGAIN_AFTER = 60
HEX_SERIAL = re.compile(r"[0-9A-Fa-f]{1,40}")


class PayUnavailable(RuntimeError):
    """WeChat Pay cannot be reached or is not configured: try again later."""


class PayRejected(RuntimeError):
    """WeChat Pay answered with an error ({"code", "message"})."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class NotificationRejected(ValueError):
    """A payment notification that is not WeChat Pay's (bad signature, stale, undecryptable)."""


class SignatureProbe(NotificationRejected):
    """WeChat Pay checking that we verify signatures: refused like any bad signature."""


class BillNotReady(RuntimeError):
    """WeChat Pay is still making that day's bill (STATEMENT_CREATING): ask again later."""


class BillInvalid(RuntimeError):
    """The downloaded bill does not match its hash or is not in WeChat Pay's format."""


@dataclass(frozen=True)
class _Settings:
    mchid: str
    appid: str
    apiv3_key: str
    private_key_pem: str
    cert_serial_no: str
    public_key_pem: str | None      # None: platform certificates only
    public_key_id: str | None
    gateway: str
    timeout: float
    verify_modes: tuple[str, ...]


# --- configuration ------------------------------------------------------------------------

def merchant_key_path() -> str:
    """The merchant's private key file; in development generated once under instance/."""
    cfg = current_app.config
    configured = cfg.get("WECHATPAY_PRIVATE_KEY_PATH")
    if configured:
        return configured
    if cfg.get("ENV_NAME") == "production":
        raise PayUnavailable("WECHATPAY_PRIVATE_KEY_PATH is not set")
    path = Path(cfg["INSTANCE_DIR"]) / DEV_MERCHANT_KEY
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(pem)
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, path)    # first writer wins; others keep the winner's key
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
        log.warning("wechat pay: generated a development merchant key at %s", path)
    return str(path)


def _read(path: str | None, what: str) -> str:
    if not path:
        raise PayUnavailable(f"{what} is not configured")
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise PayUnavailable(f"{what} cannot be read from {path}: {exc}") from exc


@lru_cache(maxsize=8)
def _merchant_key(private_key_pem: str):
    # Parsing an RSA private key costs tens of milliseconds: once per key, not once per call.
    return load_private_key(private_key_pem)


@lru_cache(maxsize=8)
def _public_key(public_key_pem: str):
    return load_public_key(public_key_pem)


def verify_modes() -> tuple[str, ...]:
    """Which of WeChat Pay's keys we accept: ("public_key",), ("platform_cert",) or both."""
    mode = current_app.config.get("WECHATPAY_VERIFY_MODE") or "public_key"
    if mode not in VERIFY_MODES:
        raise PayUnavailable(f"WECHATPAY_VERIFY_MODE {mode!r} is not one of {sorted(VERIFY_MODES)}")
    return VERIFY_MODES[mode]


def _platform_key() -> tuple[str, str]:
    """(PEM, id) of the WeChat Pay public key, read on use (a key written later is picked up)."""
    cfg = current_app.config
    public_path = cfg.get("WECHATPAY_PUBLIC_KEY_PATH")
    public_key_pem = _read(public_path, "WeChat Pay public key")
    key_id = cfg.get("WECHATPAY_PUBLIC_KEY_ID") or _read(f"{public_path}.id", "WeChat Pay public key id")
    return public_key_pem, key_id


def _settings() -> _Settings:
    cfg = current_app.config
    serial = cfg.get("WECHATPAY_CERT_SERIAL_NO")
    if not serial:
        # No guessing: WeChat Pay answers 401 SIGN_ERROR to anything but the certificate's serial.
        raise PayUnavailable("WECHATPAY_CERT_SERIAL_NO (the merchant API certificate serial) is not set")
    modes = verify_modes()
    public_key_pem, key_id = _platform_key() if "public_key" in modes else (None, None)
    return _Settings(
        mchid=cfg["WECHATPAY_MCHID"], appid=cfg["MINIAPP_APPID"], apiv3_key=cfg["WECHATPAY_APIV3_KEY"],
        private_key_pem=_read(merchant_key_path(), "merchant private key"), cert_serial_no=serial,
        public_key_pem=public_key_pem, public_key_id=key_id,
        gateway=cfg["WECHATPAY_API_BASE"].rstrip("/"), timeout=float(cfg.get("WECHAT_TIMEOUT", 5.0)),
        verify_modes=modes,
    )


def client() -> WeChatPay:
    """The wechatpayv3 client for the current settings (cached per settings).

    With the public key (``public_key``, ``both``) wechatpayv3 checks answers with it and, for
    an answer naming a certificate, fetches the certificates itself. With certificates only,
    it starts from ours (:func:`_new_client_with_certificates`).
    """
    settings = _settings()
    cache = current_app.extensions.setdefault("wechatpay", {})
    pay = cache.get(settings)
    if pay is None:
        arguments = dict(
            wechatpay_type=WeChatPayType.MINIPROG, mchid=settings.mchid, private_key=settings.private_key_pem,
            cert_serial_no=settings.cert_serial_no, appid=settings.appid, apiv3_key=settings.apiv3_key,
            notify_url=current_app.config["WECHATPAY_NOTIFY_URL"], timeout=settings.timeout)
        if settings.public_key_pem:
            pay = WeChatPay(public_key=settings.public_key_pem, public_key_id=settings.public_key_id, **arguments)
        else:
            pay = _new_client_with_certificates(settings, **arguments)
        pay._core._gate_way = settings.gateway   # WECHAT.md §8: the documented override
        cache.clear()
        cache[settings] = pay
    return pay


# --- platform certificates ----------------------------------------------------------------------

@dataclass(frozen=True)
class PlatformCertificate:
    serial_no: str          # upper-case hexadecimal, as Wechatpay-Serial names it
    pem: str

    @property
    def public_key(self):
        return _certificate(self.pem).public_key()


@lru_cache(maxsize=16)
def _certificate(pem: str):
    return load_pem_x509_certificate(pem.encode())


def _redis():
    return current_app.extensions["redis"]


def download_platform_certificates(settings: _Settings | None = None) -> list[PlatformCertificate]:
    """``GET /v3/certificates``: each certificate decrypted with the APIv3 key, the answer's
    signature checked with the certificate it names (WeChat Pay: 必须), only certificates valid
    now kept; stored in Redis for every process."""
    settings = settings or _settings()
    path = "/v3/certificates"
    authorization = build_authorization(path, "GET", settings.mchid, settings.cert_serial_no,
                                        _merchant_key(settings.private_key_pem))
    try:
        response = requests.get(settings.gateway + path, timeout=settings.timeout,
                                headers={"Authorization": authorization, "Accept": "application/json"})
    except requests.RequestException as exc:
        raise PayUnavailable(f"WeChat Pay unreachable: {exc}") from exc
    if response.status_code != 200:
        _call(lambda: (response.status_code, response.text))   # raises what the error means
        raise PayUnavailable(f"WeChat Pay answered {response.status_code} to {path}")
    try:
        entries = json.loads(response.text)["data"]
        certificates = {}
        now = datetime.now(timezone.utc)
        for entry in entries:
            encrypted = entry["encrypt_certificate"]
            if encrypted.get("algorithm") != "AEAD_AES_256_GCM":
                continue
            pem = aes_decrypt(nonce=encrypted["nonce"], ciphertext=encrypted["ciphertext"],
                              associated_data=encrypted.get("associated_data") or "",
                              apiv3_key=settings.apiv3_key)
            if pem is None:
                raise PayUnavailable("a platform certificate does not decrypt with WECHATPAY_APIV3_KEY")
            certificate = _certificate(pem)
            if int(entry["serial_no"], 16) != certificate.serial_number:
                raise PayUnavailable(f"platform certificate {entry['serial_no']} carries another serial")
            if certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
                certificates[certificate.serial_number] = PlatformCertificate(format(certificate.serial_number, "X"),
                                                                              pem)
    except (ValueError, KeyError, TypeError) as exc:
        raise PayUnavailable(f"WeChat Pay's certificate list cannot be read: {exc}") from exc
    headers = response.headers
    signer = certificates.get(_serial_number(headers.get("Wechatpay-Serial", "")))
    if signer is None or not rsa_verify(headers.get("Wechatpay-Timestamp", ""), headers.get("Wechatpay-Nonce", ""),
                                        response.text, headers.get("Wechatpay-Signature", ""), signer.public_key):
        raise PayUnavailable("the platform certificate list is not signed by a certificate it lists")
    found = list(certificates.values())
    _redis().set(CERTS_KEY.format(mchid=settings.mchid), json.dumps(
        {"fetched_at": time.time(), "certificates": [{"serial_no": c.serial_no, "pem": c.pem} for c in found]}),
        ex=2 * CERTS_REFRESH_AFTER)
    log.info("wechat pay: platform certificates %s", ", ".join(c.serial_no for c in found) or "none")
    return found


def _serial_number(serial: str) -> int | None:
    return int(serial, 16) if HEX_SERIAL.fullmatch(serial or "") else None


def _stored_certificates(settings: _Settings) -> tuple[list[PlatformCertificate], bool]:
    """(the certificates in Redis valid now, whether they were fetched recently)."""
    raw = _redis().get(CERTS_KEY.format(mchid=settings.mchid))
    if not raw:
        return [], False
    stored, now = json.loads(raw), datetime.now(timezone.utc)
    valid = [PlatformCertificate(c["serial_no"], c["pem"]) for c in stored["certificates"]
             if _certificate(c["pem"]).not_valid_before_utc <= now <= _certificate(c["pem"]).not_valid_after_utc]
    return valid, time.time() - stored["fetched_at"] < CERTS_REFRESH_AFTER


def platform_certificates(settings: _Settings | None = None) -> list[PlatformCertificate]:
    """The platform certificates valid now: from Redis, downloaded when missing or old (our
    own calls to WeChat Pay need them)."""
    settings = settings or _settings()
    certificates, recent = _stored_certificates(settings)
    return certificates if recent else download_platform_certificates(settings)


def platform_certificate(serial: str) -> PlatformCertificate | None:
    """The platform certificate a notification names, or None. A serial we do not have (or a
    list due for its refresh) sends us to WeChat Pay at most once a minute, every process
    together, so forged serials cannot make us call WeChat Pay for each forged request."""
    wanted = _serial_number(serial)
    if wanted is None:
        return None
    settings = _settings()

    def find(certificates):
        return next((c for c in certificates if int(c.serial_no, 16) == wanted), None)

    certificates, recent = _stored_certificates(settings)
    found = find(certificates)
    if (found is None or not recent) and _redis().set(CERTS_ASKED_KEY.format(mchid=settings.mchid), "1",
                                                      nx=True, ex=CERTS_ASK_AGAIN_AFTER):
        try:
            found = find(download_platform_certificates(settings))
        except PayUnavailable:
            if found is None:
                raise
            log.warning("wechat pay: platform certificates not refreshed; certificate %s still used", found.serial_no)
    return found


def _new_client_with_certificates(settings: _Settings, **kwargs) -> WeChatPay:
    """wechatpayv3 in certificate mode. Built with an empty certificate folder it would download
    the certificates from WeChat's real gateway before ours can be set: it is built from a
    folder holding ours, then keeps them in memory (and fetches a new one through our gateway
    when an answer names it) with no folder to write to."""
    certificates = platform_certificates(settings)
    if not certificates:
        raise PayUnavailable("WeChat Pay lists no platform certificate valid now")
    with tempfile.TemporaryDirectory(prefix="wechatpay-certs-") as folder:
        for certificate in certificates:
            (Path(folder) / f"{certificate.serial_no}.pem").write_text(certificate.pem)
        pay = WeChatPay(cert_dir=folder, **kwargs)
    pay._core._cert_dir = None
    return pay


def _call(fn, *args, **kwargs):
    try:
        status, body = fn(*args, **kwargs)
    except requests.RequestException as exc:
        raise PayUnavailable(f"WeChat Pay unreachable: {exc}") from exc
    except Exception as exc:   # wechatpayv3 raises bare Exception for a bad answer signature
        raise PayUnavailable(f"WeChat Pay answer refused: {exc}") from exc
    if 200 <= status < 300:
        return status, (json.loads(body) if isinstance(body, str) and body else {})
    try:
        error = json.loads(body)
    except (TypeError, ValueError):
        error = {}
    if status >= 500 or error.get("code") in ("SYSTEM_ERROR", "FREQUENCY_LIMITED"):
        raise PayUnavailable(f"WeChat Pay {status}: {error or body!r}")
    raise PayRejected(status, error.get("code", "UNKNOWN"), error.get("message", ""))


# --- orders ---------------------------------------------------------------------------------

def rfc3339(moment: datetime) -> str:
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def jsapi_prepay(*, out_trade_no: str, description: str, amount_fen: int, openid: str,
                 time_expire: datetime | None = None, attach: str | None = None, appid: str | None = None) -> str:
    """Create (or re-create with identical parameters) the JSAPI order; returns prepay_id.

    ``appid``: the app the payer's ``openid`` belongs to (WeChat Pay refuses a mismatch) —
    the mini-program's by default, the official account's for its web pages."""
    pay = client()
    appid = appid or current_app.config["MINIAPP_APPID"]
    pay_type = WeChatPayType.MINIPROG if appid == current_app.config["MINIAPP_APPID"] else WeChatPayType.JSAPI
    _, answer = _call(pay.pay, description=description, out_trade_no=out_trade_no,
                      amount={"total": amount_fen, "currency": "CNY"}, payer={"openid": openid},
                      time_expire=rfc3339(time_expire) if time_expire else None, attach=attach,
                      notify_url=current_app.config["WECHATPAY_NOTIFY_URL"], appid=appid, pay_type=pay_type)
    return answer["prepay_id"]


def request_payment_params(prepay_id: str, appid: str | None = None) -> dict:
    """What the page passes to ``wx.requestPayment`` (mini-program: appId is signed but not
    passed) or ``WeixinJSBridge.invoke('getBrandWCPayRequest', …)`` (official account: all of it).
    paySign: the merchant's RSA-SHA256 over ``appId\ntimeStamp\nnonceStr\npackage\n``."""
    pay = client()
    appid = appid or current_app.config["MINIAPP_APPID"]
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    package = f"prepay_id={prepay_id}"
    return {
        "appId": appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package, "signType": "RSA",
        "paySign": pay.sign([appid, timestamp, nonce, package]),
    }


class JsapiGateway:
    """WeChat Pay's JSAPI orders for one app (``app.services.payments.PayGateway``): the
    mini-program (``JsapiGateway.mini_program()``) or the official account's pages
    (``JsapiGateway.official_account()``). Every failure is ``payments.GatewayUnavailable``."""

    def __init__(self, appid: str):
        self.appid = appid

    @classmethod
    def mini_program(cls) -> "JsapiGateway":
        return cls(current_app.config["MINIAPP_APPID"])

    @classmethod
    def official_account(cls) -> "JsapiGateway":
        return cls(current_app.config["WECHAT_APPID"])

    def prepay(self, payment, payer_openid: str, household) -> str:
        with _unavailable():
            return jsapi_prepay(out_trade_no=payment.out_trade_no, description=payment.description,
                                amount_fen=payment.amount_fen, openid=payer_openid,
                                time_expire=payment.created_at + ORDER_TTL, attach=f"household:{household.id}",
                                appid=self.appid)

    def close(self, out_trade_no: str) -> str:
        with _unavailable():
            return close_order(out_trade_no)

    def settle_paid(self, out_trade_no: str) -> None:
        with _unavailable():
            transaction = query_order(out_trade_no)
            if transaction is not None:
                settle_transaction(transaction)

    def pay_params(self, prepay_id: str) -> dict:
        return request_payment_params(prepay_id, self.appid)


@contextmanager
def _unavailable():
    try:
        yield
    except (PayUnavailable, PayRejected) as exc:
        raise GatewayUnavailable(str(exc)) from exc


def query_order(out_trade_no: str) -> dict | None:
    """The order as WeChat Pay knows it (trade_state, transaction_id, amount, ...), or None."""
    try:
        return _call(client().query, out_trade_no=out_trade_no)[1]
    except PayRejected as exc:
        if exc.code == "ORDER_NOT_EXIST":
            return None
        raise


def close_order(out_trade_no: str) -> str:
    """Close an unpaid order at WeChat Pay: "closed", "paid" (too late) or "missing"."""
    try:
        _call(client().close, out_trade_no=out_trade_no)
    except PayRejected as exc:
        if exc.code == "ORDERPAID":
            return "paid"
        if exc.code == "ORDER_NOT_EXIST":
            return "missing"
        if exc.code == "ORDER_CLOSED":
            return "closed"
        raise
    return "closed"


def parse_success_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- refunds ----------------------------------------------------------------------------------

def refund_notify_url() -> str:
    """``WECHATPAY_REFUND_NOTIFY_URL``, else /pay/refund-notify next to the payment notify URL."""
    cfg = current_app.config
    return cfg.get("WECHATPAY_REFUND_NOTIFY_URL") or cfg["WECHATPAY_NOTIFY_URL"].rsplit("/", 1)[0] + "/refund-notify"


def refund(*, out_refund_no: str, out_trade_no: str, transaction_id: str | None, refund_fen: int,
           total_fen: int, reason: str) -> dict:
    """Ask WeChat Pay to refund (``POST /v3/refund/domestic/refunds``); returns its answer
    (refund_id, status PROCESSING|SUCCESS|CLOSED|ABNORMAL, create_time, ...). The same
    out_refund_no again answers the same refund: WeChat Pay refunds it once."""
    _, answer = _call(client().refund, out_refund_no=out_refund_no, transaction_id=transaction_id,
                      out_trade_no=None if transaction_id else out_trade_no, reason=reason,
                      amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
                      notify_url=refund_notify_url())
    return answer


def query_refund(out_refund_no: str) -> dict | None:
    """The refund as WeChat Pay knows it, or None when it never received it."""
    try:
        return _call(client().query_refund, out_refund_no=out_refund_no)[1]
    except PayRejected as exc:
        if exc.code == "RESOURCE_NOT_EXISTS":
            return None
        raise


def settle_refund(refund_resource: dict):
    """Record what WeChat Pay says of a refund (a notification resource or a query/refund
    answer, whose status field is named differently) exactly once. The caller commits."""
    amount = refund_resource.get("amount") or {}
    return record_refund_result(
        refund_resource["out_refund_no"], refund_resource.get("refund_status") or refund_resource.get("status"),
        refund_id=refund_resource.get("refund_id"),
        accepted_at=parse_success_time(refund_resource.get("create_time")),
        succeeded_at=parse_success_time(refund_resource.get("success_time")),
        received_account=refund_resource.get("user_received_account"),
        amount_fen=int(amount["refund"]) if "refund" in amount else None,
    )


# --- the daily trade bill ----------------------------------------------------------------------

@dataclass(frozen=True)
class BillRecord:
    """One detail row of WeChat Pay's trade bill (ALL): a payment or a refund."""

    kind: str                    # payment | refund
    time: datetime               # 交易时间 (Beijing): payment success, or refund acceptance
    out_trade_no: str
    transaction_id: str
    state: str                   # payment: 交易状态 (SUCCESS); refund: 退款状态 (SUCCESS, PROCESSING, ...)
    amount_fen: int              # payment: 订单金额; refund: 申请退款金额
    out_refund_no: str | None = None
    refund_id: str | None = None


@dataclass
class TradeBill:
    bill_date: date
    available: bool                          # False: WeChat Pay has no bill (no trade that day)
    records: list[BillRecord] = field(default_factory=list)
    payment_fen: int = 0                     # 应结订单总金额
    refund_fen: int = 0                      # 退款总金额


BILL_SUMMARY_HEADER = "总交易单数"


def _fen(value: str) -> int:
    try:
        return int((Decimal(value or "0") * 100).to_integral_value())
    except InvalidOperation as exc:
        raise BillInvalid(f"amount {value!r} is not a number") from exc


def parse_trade_bill(text: str, bill_date: date) -> TradeBill:
    """WeChat Pay's trade bill CSV: a header row, detail rows whose every field starts with a
    backtick, then the summary header (总交易单数,…) and one summary row. Columns are read by
    their header names (WeChat Pay says their order is not fixed)."""
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if len(lines) < 3:
        raise BillInvalid("the bill has no header, summary header or summary row")
    header = [h.strip() for h in lines[0].split(",")]
    try:
        split = next(i for i, line in enumerate(lines) if line.startswith(BILL_SUMMARY_HEADER))
    except StopIteration as exc:
        raise BillInvalid("the bill has no summary") from exc
    summary_names = lines[split].split(",")
    summary = dict(zip(summary_names, (v.lstrip("`") for v in lines[split + 1].split(","))))
    records = []
    for line in lines[1:split]:
        values = [v[1:] if v.startswith("`") else v for v in line.split(",")]
        if len(values) < len(header):
            raise BillInvalid(f"a detail row has {len(values)} fields, the header {len(header)}")
        row = dict(zip(header, values))
        try:
            moment = datetime.strptime(row["交易时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
            state = row["交易状态"]
            if state == "REFUND":
                records.append(BillRecord("refund", moment, row["商户订单号"], row["微信订单号"], row["退款状态"],
                                          _fen(row["申请退款金额"]), row["商户退款单号"], row["微信退款单号"]))
            else:
                records.append(BillRecord("payment", moment, row["商户订单号"], row["微信订单号"], state,
                                          _fen(row["订单金额"])))
        except (KeyError, ValueError) as exc:
            raise BillInvalid(f"a detail row cannot be read: {exc}") from exc
    bill = TradeBill(bill_date, True, records, _fen(summary.get("应结订单总金额", "0")),
                     _fen(summary.get("退款总金额", "0")))
    if int(summary.get(BILL_SUMMARY_HEADER, -1)) != len(records):
        raise BillInvalid(f"the summary counts {summary.get(BILL_SUMMARY_HEADER)} rows, the bill has {len(records)}")
    return bill


def download_trade_bill(bill_date: date) -> TradeBill:
    """Apply for the day's trade bill (``GET /v3/bill/tradebill``), download it from the
    ``download_url`` (signed request, unsigned answer), check its SHA1 and parse it.

    No bill for a day without trades (NO_STATEMENT_EXIST) is an empty, unavailable bill;
    STATEMENT_CREATING (before ~10:00 the next day) raises :class:`BillNotReady`.
    """
    pay = client()
    try:
        _, answer = _call(pay.trade_bill, bill_date=bill_date.isoformat(), bill_type="ALL", tar_type="GZIP")
    except PayRejected as exc:
        if exc.code == "NO_STATEMENT_EXIST":
            return TradeBill(bill_date, available=False)
        if exc.code == "STATEMENT_CREATING":
            raise BillNotReady(exc.message) from exc
        raise
    try:
        status, body = pay.download_bill(answer["download_url"])
    except requests.RequestException as exc:
        raise PayUnavailable(f"WeChat Pay bill download failed: {exc}") from exc
    if not 200 <= status < 300:
        raise PayUnavailable(f"WeChat Pay bill download answered {status}")
    raw = body.encode() if isinstance(body, str) else body
    try:
        raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise BillInvalid("the bill is not the GZIP file asked for") from exc
    if answer.get("hash_type", "SHA1").upper() != "SHA1" or hashlib.sha1(raw).hexdigest() != answer.get("hash_value"):
        raise BillInvalid("the bill's SHA1 does not match hash_value")
    return parse_trade_bill(raw.decode("utf-8"), bill_date)


# --- notifications ---------------------------------------------------------------------------

def verify_notification(headers, body: bytes) -> dict:
    """Check a notification's signature and freshness and decrypt its resource.

    Returns ``{"id", "event_type", "original_type", "resource": {...decrypted...}}``; raises
    :class:`NotificationRejected` for anything WeChat Pay did not send us (:class:`SignatureProbe`
    for WeChat Pay's own deliberate bad signatures), :class:`PayUnavailable` when a platform
    certificate cannot be fetched now.
    """
    cfg = current_app.config
    if headers.get("Wechatpay-Signature-Type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
        raise NotificationRejected("unsupported signature type")
    timestamp, nonce = headers.get("Wechatpay-Timestamp", ""), headers.get("Wechatpay-Nonce", "")
    signature, serial = headers.get("Wechatpay-Signature", ""), headers.get("Wechatpay-Serial", "")
    if not (timestamp and nonce and signature and serial):
        raise NotificationRejected("missing signature headers")
    if signature.startswith(SIGN_PROBE_PREFIX):
        raise SignatureProbe("WeChat Pay signature probe (WECHATPAY/SIGNTEST/)")
    # Unix seconds in ASCII digits: "²" is a digit to str.isdigit() but not to int(), and
    # int() refuses thousands of digits — either would be a 500 instead of a refusal.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise NotificationRejected("malformed Wechatpay-Timestamp")
    if abs(time.time() - int(timestamp)) > NOTIFY_MAX_SKEW:
        raise NotificationRejected("stale timestamp")
    # Only now, for a fresh, well-formed request, may a certificate be looked up.
    public_key = _notification_key(serial)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotificationRejected("body is not UTF-8") from exc
    if not rsa_verify(timestamp, nonce, text, signature, public_key):
        raise NotificationRejected("bad signature")
    try:
        event = json.loads(text)
        resource = event["resource"]
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotificationRejected("unsupported algorithm")
        plain = aes_decrypt(nonce=resource["nonce"], ciphertext=resource["ciphertext"],
                            associated_data=resource.get("associated_data", ""), apiv3_key=cfg["WECHATPAY_APIV3_KEY"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotificationRejected(f"malformed notification: {exc}") from exc
    if plain is None:
        raise NotificationRejected("resource does not decrypt")
    try:
        decrypted = json.loads(plain)
    except ValueError as exc:
        raise NotificationRejected("resource is not JSON") from exc
    if decrypted.get("mchid") != cfg["WECHATPAY_MCHID"]:
        raise NotificationRejected("notification for another merchant")
    original_type = resource.get("original_type")
    # A payment names one of our apps (the mini-program, or the official account for its
    # pages); a refund resource has no appid at all (WECHAT.md §8).
    if original_type != "refund" and decrypted.get("appid") not in (cfg["MINIAPP_APPID"], cfg["WECHAT_APPID"]):
        raise NotificationRejected("notification for another app")
    return {"id": event.get("id"), "event_type": event.get("event_type"), "original_type": original_type,
            "resource": decrypted}


def _notification_key(serial: str):
    """The key a notification's Wechatpay-Serial names, among the kinds we accept (no merchant
    key needed to check WeChat Pay's word)."""
    modes = verify_modes()
    if "public_key" in modes:
        public_key_pem, public_key_id = _platform_key()
        if serial == public_key_id:
            return _public_key(public_key_pem)
    if "platform_cert" in modes:
        certificate = platform_certificate(serial)
        if certificate is not None:
            return certificate.public_key
    raise NotificationRejected(f"unknown Wechatpay-Serial {serial[:48]!r}")


# --- crediting ---------------------------------------------------------------------------------

PAID_TRADE_STATES = ("SUCCESS", "REFUND")   # REFUND: paid, then a refund was applied for


def settle_transaction(transaction: dict):
    """Credit our payment for a WeChat Pay transaction that was paid (exactly once).

    ``transaction`` is a decrypted notification resource or a query answer; ``trade_state``
    SUCCESS, or REFUND (paid, and a refund has been applied for since). Returns the billing
    ``CreditResult``, or None when the transaction was not paid. The caller commits.
    """
    if transaction.get("trade_state") not in PAID_TRADE_STATES:
        return None
    amount = transaction.get("amount") or {}
    return credit_payment(
        transaction["out_trade_no"], transaction["transaction_id"], int(amount.get("total", -1)),
        parse_success_time(transaction.get("success_time")) or utcnow(),
        payer_openid=(transaction.get("payer") or {}).get("openid"),
    )
