"""Alibaba Cloud SMS error codes -> notifykit errors (fact sheet §4).

Account faults (credentials, permissions, money, the account's day/month caps, a caller
outside mainland China) are ``AuthenticationError`` / ``InsufficientBalance`` /
``QuotaExceeded``: the router fails over and cools the instance down. Recipient faults
(an illegal number; per-number flow control ``isv.BUSINESS_LIMIT_CONTROL``, classified like
notifykit's own recipient guard) are ``InvalidRecipient`` / ``RecipientRateLimited``: the
send stops. Signature and template faults are ``TemplateError``. Throttling, a used nonce
and platform errors are retryable ``ProviderUnavailable``. A fault in the request notifykit
built (a missing or malformed parameter) is a plain ``ProviderError``.
"""

from __future__ import annotations

from notifykit.errors import (
    AuthenticationError,
    InsufficientBalance,
    InvalidRecipient,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RecipientRateLimited,
    TemplateError,
)

__all__ = ["ERROR_TABLE", "HINTS", "MEANINGS", "RETRYABLE", "error_class_for", "error_for"]

ERROR_TABLE: dict[str, type[ProviderError]] = {
    # 4.1 business codes (HTTP 200)
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": TemplateError,
    "isv.EXTEND_CODE_ERROR": TemplateError,
    "isv.SIGN_STATE_ILLEGAL": TemplateError,
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": TemplateError,
    "isv.DENY_IP_RANGE": AuthenticationError,
    "isv.DAY_LIMIT_CONTROL": QuotaExceeded,
    "isv.MONTH_LIMIT_CONTROL": QuotaExceeded,
    "isv.SMS_CONTENT_ILLEGAL": TemplateError,
    "isv.SMS_SIGN_ILLEGAL": TemplateError,
    "isp.RAM_PERMISSION_DENY": AuthenticationError,
    "isv.OUT_OF_SERVICE": InsufficientBalance,
    "isv.PRODUCT_UN_SUBSCRIPT": AuthenticationError,
    "isv.PRODUCT_UNSUBSCRIBE": AuthenticationError,
    "isv.ACCOUNT_NOT_EXISTS": AuthenticationError,
    "isv.ACCOUNT_ABNORMAL": AuthenticationError,
    "isv.SMS_TEMPLATE_ILLEGAL": TemplateError,
    "isv.SMS_SIGNATURE_ILLEGAL": TemplateError,
    "isv.INVALID_PARAMETERS": ProviderError,
    "isp.SYSTEM_ERROR": ProviderUnavailable,
    "isv.MOBILE_NUMBER_ILLEGAL": InvalidRecipient,
    "isv.MOBILE_COUNT_OVER_LIMIT": ProviderError,
    "isv.TEMPLATE_MISSING_PARAMETERS": TemplateError,
    "isv.BUSINESS_LIMIT_CONTROL": RecipientRateLimited,
    "isv.INVALID_JSON_PARAM": TemplateError,
    "isv.BLACK_KEY_CONTROL_LIMIT": TemplateError,
    "isv.PARAM_LENGTH_LIMIT": TemplateError,
    "isv.PARAM_NOT_SUPPORT_URL": TemplateError,
    "isv.AMOUNT_NOT_ENOUGH": InsufficientBalance,
    "isv.TEMPLATE_PARAMS_ILLEGAL": TemplateError,
    # 4.2 gateway codes (HTTP 4xx, with HostId and Recommend)
    "InvalidAccessKeyId.NotFound": AuthenticationError,
    "InvalidAccessKeyId.Inactive": AuthenticationError,
    "SignatureDoesNotMatch": AuthenticationError,
    "InvalidTimeStamp.Expired": AuthenticationError,
    "InvalidTimeStamp.Format": ProviderError,
    "SignatureNonceUsed": ProviderUnavailable,
    "InvalidSignatureMethod": ProviderError,
    "InvalidParameter.Format": ProviderError,
    "InvalidVersion": ProviderError,
    "InvalidAction.NotFound": ProviderError,
    "InvalidApi.NotFound": ProviderError,
    "Throttling.User": ProviderUnavailable,
    "Throttling.Api": ProviderUnavailable,
}
"""Every code the fact sheet documents for SendSms and the gateway, with its class. A
``Missing<Parameter>`` code is a ProviderError; any other unknown code too."""

MEANINGS: dict[str, str] = {
    # 4.1: the vendor's Message is Chinese prose
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": "the signature's type does not match the template's",
    "isv.EXTEND_CODE_ERROR": "one extend code used with several signatures",
    "isv.SIGN_STATE_ILLEGAL": "the signature is not usable (its state is unavailable)",
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": "an international template cannot send to a mainland "
    "number",
    "isv.DENY_IP_RANGE": "the caller's IP address is in a region that may not send",
    "isv.DAY_LIMIT_CONTROL": "the account's daily volume cap is reached",
    "isv.MONTH_LIMIT_CONTROL": "the account's monthly volume cap is reached",
    "isv.SMS_CONTENT_ILLEGAL": "the content holds forbidden material",
    "isv.SMS_SIGN_ILLEGAL": "the signature is banned",
    "isp.RAM_PERMISSION_DENY": "the RAM user lacks the SMS permission",
    "isv.OUT_OF_SERVICE": "the account is suspended for insufficient balance",
    "isv.PRODUCT_UN_SUBSCRIPT": "the account has not activated Cloud Communication",
    "isv.PRODUCT_UNSUBSCRIBE": "the SMS product is not activated",
    "isv.ACCOUNT_NOT_EXISTS": "the account does not exist (wrong AccessKey)",
    "isv.ACCOUNT_ABNORMAL": "the account is in an abnormal state",
    "isv.SMS_TEMPLATE_ILLEGAL": "the template does not exist under this account or is not approved",
    "isv.SMS_SIGNATURE_ILLEGAL": "the signature does not exist or is not approved",
    "isv.INVALID_PARAMETERS": "a parameter is malformed",
    "isp.SYSTEM_ERROR": "a platform error; safe to retry",
    "isv.MOBILE_NUMBER_ILLEGAL": "the phone number is invalid",
    "isv.MOBILE_COUNT_OVER_LIMIT": "more than 1,000 numbers in one request",
    "isv.TEMPLATE_MISSING_PARAMETERS": "the template has a variable with no parameter",
    "isv.BUSINESS_LIMIT_CONTROL": "too many messages to this number (per-number flow control)",
    "isv.INVALID_JSON_PARAM": "TemplateParam is not JSON with string values",
    "isv.BLACK_KEY_CONTROL_LIMIT": "a parameter holds a restricted word",
    "isv.PARAM_LENGTH_LIMIT": "a parameter is too long",
    "isv.PARAM_NOT_SUPPORT_URL": "a parameter may not be a URL",
    "isv.AMOUNT_NOT_ENOUGH": "insufficient account balance",
    "isv.TEMPLATE_PARAMS_ILLEGAL": "a parameter holds an illegal keyword",
}
"""notifykit's English for each business code of the fact sheet (§4.1,
../shared/aliyun/API.md), shown beside the vendor's Message, which is Chinese. The gateway
codes (§4.2) come with an English Message of the vendor's own and need none."""

RETRYABLE = frozenset(
    {"isp.SYSTEM_ERROR", "SignatureNonceUsed", "Throttling.User", "Throttling.Api"}
)
"""Codes after which the same request, with a fresh nonce and time, may be tried again."""

HINTS: dict[str, str] = {
    "SignatureDoesNotMatch": "check access_key_secret (and that access_key_id is its pair)",
    "InvalidTimeStamp.Expired": "check this host's clock: the request time must be within "
    "15 minutes of Alibaba's (UTC)",
    "InvalidAccessKeyId.NotFound": "check access_key_id",
    "InvalidAccessKeyId.Inactive": "the AccessKey is disabled in the RAM console",
    "isp.RAM_PERMISSION_DENY": "grant the RAM user AliyunDysmsFullAccess (or dysms:SendSms)",
    "isv.SMS_SIGNATURE_ILLEGAL": "check sign_name: it must be an approved signature, exactly",
    "isv.SMS_TEMPLATE_ILLEGAL": "check template_code: an approved template of this account",
    "isv.TEMPLATE_MISSING_PARAMETERS": "every ${variable} of the template needs a parameter "
    "(see param_names)",
    "isv.DENY_IP_RANGE": "mainland SMS cannot be sent from outside mainland China",
    "isv.BUSINESS_LIMIT_CONTROL": "the default limits are 1/min, 5/h, 10/day per number",
}
"""What to check, added to the error message for codes where that is not obvious."""


def error_class_for(code: str | None) -> type[ProviderError]:
    """The notifykit error class for an Alibaba ``Code``; ProviderError when not listed."""
    if not code:
        return ProviderError
    return ERROR_TABLE.get(code, ProviderError)


def error_for(
    code: str | None, message: str | None, *, provider: str, action: str, http_status: int
) -> ProviderError:
    """The error to raise for an answer to ``action`` whose ``Code`` is not ``OK``."""
    cls = error_class_for(code)
    shown = (message or "").strip()[:200] or "<no message>"
    text = f"{provider}: Alibaba Cloud refused the {action}: {code or '<no code>'}: {shown}"
    # The vendor's words are kept; notifykit's English and what to check go beside them.
    notes = [note for note in (MEANINGS.get(code or ""), HINTS.get(code or "")) if note]
    if notes:
        text += f" ({'; '.join(notes)})"
    if http_status != 200:
        text += f" [HTTP {http_status}]"
    if cls is ProviderUnavailable:
        return ProviderUnavailable(
            text,
            provider=provider,
            vendor_code=code,
            vendor_message=message,
            retryable=code in RETRYABLE,
        )
    return cls(text, provider=provider, vendor_code=code, vendor_message=message)
