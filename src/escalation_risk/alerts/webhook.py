"""One webhook endpoint: its URL (shown without secrets), the signing secret, the payload
shapes, and one signed POST.

Every request is signed with the Standard Webhooks scheme (the ``standardwebhooks``
package): ``webhook-id`` (the message's id, the same on every resend),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,base64(HMAC-SHA256(secret, id.timestamp.body))``). The headers travel with every
shape, so a receiver drops an at-least-once duplicate by its ``webhook-id`` even when
the body is an office platform's text message with no room for an id. :func:`verify`
is the receiver's check (the package's ``Webhook.verify``: signature, and a timestamp
within five minutes, so a captured message cannot be replayed later).

The secret is required to send and must have at least :data:`MIN_SECRET_BYTES` bytes;
it never appears in a ``repr``, a log line or an error. Platform URLs carry their keys
(WeCom's and DingTalk's in the query string, Feishu's in the path): :func:`shown_url`
is the only form of a URL this module puts in a message.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
import standardwebhooks

__all__ = ["Webhook", "WebhookSecretError", "DeliveryError", "verify", "verify_signature", "shown_url",
           "secret_bytes", "SHAPES", "MIN_SECRET_BYTES", "ID_HEADER", "TIMESTAMP_HEADER", "SIGNATURE_HEADER"]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SHAPES = ("json", "wecom", "dingtalk", "feishu")
#: The shortest signing secret accepted: 256 bits, as the HMAC's own key size.
MIN_SECRET_BYTES = 32
_STANDARD_PREFIX = "whsec_"  # a Standard Webhooks secret: whsec_ + base64
# A path segment this long of letters, digits, - and _ is a token (Feishu's hook id), not a name.
_TOKEN_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{16,}$")


class WebhookSecretError(ValueError):
    """No signing secret, or one too short to sign with (the message never shows it)."""


class DeliveryError(RuntimeError):
    """One POST that failed: a timeout, a refused connection or a non-2xx answer. The
    message names the kind and the status only: never the URL's key, the body or the secret."""


def secret_bytes(secret: str | bytes) -> bytes:
    """The signing key in ``secret``: a Standard Webhooks ``whsec_<base64>`` string, or the
    text itself (UTF-8); refused when shorter than :data:`MIN_SECRET_BYTES` bytes."""
    if isinstance(secret, str):
        if secret.startswith(_STANDARD_PREFIX):
            try:
                key = base64.b64decode(secret[len(_STANDARD_PREFIX):], validate=True)
            except (binascii.Error, ValueError):
                raise WebhookSecretError("the webhook secret starts with whsec_ but the rest is not base64") from None
        else:
            key = secret.encode("utf-8")
    elif isinstance(secret, (bytes, bytearray)):
        key = bytes(secret)
    else:
        raise WebhookSecretError(f"the webhook secret must be str or bytes, not {type(secret).__name__}")
    if len(key) < MIN_SECRET_BYTES:
        raise WebhookSecretError(
            f"the webhook secret has {len(key)} bytes; at least {MIN_SECRET_BYTES} are needed to sign "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')")
    return key


def shown_url(url: str) -> str:
    """``url`` as it may be shown: scheme, host, port and path, with no user, password,
    query string or fragment, and token-like path segments replaced by ``…``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<an unreadable URL>"
    path = "/".join("…" if _TOKEN_SEGMENT.match(seg) else seg for seg in parts.path.split("/"))
    return f"{parts.scheme}://{host}{port}{path}"


def verify(body: bytes, headers: Any, secret: str | bytes) -> Any:
    """A receiver's check of one request (the Standard Webhooks ``verify``): returns the
    parsed JSON body, or raises ``standardwebhooks.webhooks.WebhookVerificationError`` for
    a bad signature, a missing header or a timestamp more than five minutes off."""
    return standardwebhooks.Webhook(secret_bytes(secret)).verify(body, {str(k): str(v) for k, v in headers.items()})


def verify_signature(body: bytes, headers: Any, secret: str | bytes) -> bool:
    """:func:`verify` as a yes or no."""
    try:
        verify(body, headers, secret)
    except standardwebhooks.webhooks.WebhookVerificationError:
        return False
    return True


@dataclass(frozen=True)
class Webhook:
    """Where and how to POST: ``url``, the signing ``secret`` (at least 32 bytes; needed to
    send, not to queue), a per-request ``timeout_s``, and the payload ``shape``: ``json``
    (the default, the whole message), or the text-message shape of a common office
    platform's group-bot webhook (``wecom``, ``dingtalk``, ``feishu``: the ready-to-show
    Chinese ``text``, with the same signed headers; those platforms' own URL signing is
    not done here)."""

    url: str = field(repr=False)
    secret: bytes | None = field(default=None, repr=False)
    timeout_s: float = 5.0
    shape: str = "json"

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not re.match(r"^https?://", self.url):
            raise ValueError(f"notify URL: expected http:// or https://, got {shown_url(str(self.url))!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"shape: expected one of {SHAPES}, got {self.shape!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s: expected a positive number, got {self.timeout_s!r}")
        if self.secret is not None:
            object.__setattr__(self, "secret", secret_bytes(self.secret))

    def __repr__(self) -> str:
        return (f"Webhook(url={shown_url(self.url)!r}, shape={self.shape!r}, timeout_s={self.timeout_s!r}, "
                f"secret={'<set>' if self.secret else None})")

    @property
    def shown(self) -> str:
        """The URL as it may be shown (:func:`shown_url`)."""
        return shown_url(self.url)

    def require_secret(self) -> bytes:
        """The signing key, or :class:`WebhookSecretError` saying that one is needed to send."""
        if not self.secret:
            raise WebhookSecretError(
                f"no webhook secret: a secret of at least {MIN_SECRET_BYTES} bytes is required to send to "
                f"{self.shown} (--notify-secret or $ESCALATION_RISK_NOTIFY_SECRET)")
        return self.secret

    def render(self, message: dict[str, Any]) -> bytes:
        """The request body for ``message`` in this webhook's shape."""
        if self.shape == "json":
            payload: dict[str, Any] = message
        elif self.shape in ("wecom", "dingtalk"):
            payload = {"msgtype": "text", "text": {"content": message["text"]}}
        else:
            payload = {"msg_type": "text", "content": {"text": message["text"]}}
        return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")

    def headers(self, webhook_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
        """The signed headers of ``body`` sent as ``webhook_id`` at ``at`` (default: now)."""
        when = at or datetime.now(timezone.utc)
        signer = standardwebhooks.Webhook(self.require_secret())
        return {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "escalation-risk",
            ID_HEADER: webhook_id,
            TIMESTAMP_HEADER: str(int(when.timestamp())),
            SIGNATURE_HEADER: signer.sign(webhook_id, when, body),
        }

    def post(self, client: httpx.Client, webhook_id: str, body: bytes) -> None:
        """POST ``body`` once, freshly signed; raises :class:`DeliveryError` on a timeout, a
        refused connection or a non-2xx answer."""
        headers = self.headers(webhook_id, body)
        try:
            answer = client.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
        except httpx.TimeoutException as e:
            raise DeliveryError(f"timed out after {self.timeout_s:g} s ({type(e).__name__})") from None
        except httpx.HTTPError as e:
            raise DeliveryError(f"unreachable: {type(e).__name__}: {self._scrub(str(e))}"[:200]) from None
        except httpx.InvalidURL:  # its message quotes the URL, key and all
            raise DeliveryError(f"invalid URL {self.shown}") from None
        if not 200 <= answer.status_code < 300:
            raise DeliveryError(f"HTTP {answer.status_code}")

    def _scrub(self, text: str) -> str:
        # A transport error may quote the URL it was given; only the shown form goes out.
        return text.replace(self.url, self.shown).split("?")[0]
