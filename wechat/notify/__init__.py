"""One way to reach a person: pick the channel WeChat allows, send once, record the outcome.

- ``channels``: which channel carries which notice to whom (subscribe consent, the 48-hour
  customer-service window, the template message to followers; an in-doubt send only as a
  template message), and what each shows (``Notice``, rendered with ``wechat.templates``);
- ``transport``: the calls to WeChat (wechatpy, and a keep-alive pool for template messages),
  WeChat's errcodes turned into an ``Outcome`` or into ``TemporaryFailure`` / ``Deferred``
  (quota and rate limits), the words staff read (``REASONS``);
- ``records``: the outbound row of each key (claimed once, committed "sending" before the
  call, finished after), the in-doubt rules, consents taken and given back, template problems
  reported for the console;
- ``chain``: the one chain through the three — ``send_notices`` for a batch, ``send_notice``
  for one (the batch of one).

Errors are classified as WeChat documents them: −1 and timeouts are retried by the caller
(RQ backoff); 45011 waits for the next minute and 45009 until the daily reset (``Deferred``,
never a hot loop); 43004/43101/45015 end that channel for this user with the reason; a
template's configuration errors (40037, 47003, 41030, 48001, or values that cannot be shaped)
are reported per kind and channel for the console (``templates.problems``). A notification
has a unique key: it is sent at most once (template messages also carry ``client_msg_id`` so
WeChat itself drops a repeat within 10 minutes). When the answer is lost, see ``records``.
"""
from wechat.notify.chain import send_notice, send_notices
from wechat.notify.channels import CUSTOM_WINDOW, Notice, window_key
from wechat.notify.records import (RESEND_WITHIN, UNKNOWN_REASONS, in_doubt_outcome, may_resend_in_doubt,
                                   record_template_result)
from wechat.notify.transport import (CHANNEL_CLOSED, CONFIG_ERRORS, DAILY_QUOTA, INVALID_OPENID, MINUTE_LIMIT,
                                     NO_CONSENT, NOT_FOLLOWING, OUT_OF_COUNT, REASONS, TEMPLATE_ERRORS,
                                     WINDOW_CLOSED, Outcome, TemporaryFailure, next_beijing_midnight, reason_text,
                                     send_custom_message, template_message, upload_image)

__all__ = [
    "CHANNEL_CLOSED", "CONFIG_ERRORS", "CUSTOM_WINDOW", "DAILY_QUOTA", "INVALID_OPENID", "MINUTE_LIMIT",
    "NOT_FOLLOWING", "NO_CONSENT", "Notice", "OUT_OF_COUNT", "Outcome", "REASONS", "RESEND_WITHIN",
    "TEMPLATE_ERRORS", "TemporaryFailure", "UNKNOWN_REASONS", "WINDOW_CLOSED", "in_doubt_outcome",
    "may_resend_in_doubt", "next_beijing_midnight", "reason_text", "record_template_result", "send_custom_message",
    "send_notice", "send_notices", "template_message", "upload_image", "window_key",
]
