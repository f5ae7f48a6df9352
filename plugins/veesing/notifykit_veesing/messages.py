"""The vendor's own words: the Chinese messages of the Veesing document, verbatim.

Shared by the provider (to classify a refusal) and the sandbox (to answer like the vendor).
"""

from __future__ import annotations

__all__ = [
    "ACCOUNT_DAILY_CAP",
    "ACCOUNT_LOCKED",
    "BAD_CREDENTIALS",
    "BAD_PARAMETER",
    "BAD_PHONE",
    "BAD_TEMPLATE_ID",
    "INSUFFICIENT_BALANCE",
    "IP_RESTRICTED",
    "MEANINGS",
    "MISSING_PARAMETER",
    "NUMBER_DAILY_CAP",
    "NUMBER_PER_MINUTE",
    "SUCCESS",
    "TEMPLATE_UNKNOWN",
    "UNKNOWN_REASON",
]

SUCCESS = "成功"
BAD_CREDENTIALS = "账号或密码错误"
ACCOUNT_LOCKED = "您的账户已被锁定,请联系您的专属客服"
IP_RESTRICTED = "IP受限"
MISSING_PARAMETER = "缺少参数"
BAD_PARAMETER = "参数错误"
TEMPLATE_UNKNOWN = "模板不存在或者未通过"
BAD_TEMPLATE_ID = "模板id格式不正确"
INSUFFICIENT_BALANCE = "余额不足"
ACCOUNT_DAILY_CAP = "当日发送量已超出最大发送限制"
BAD_PHONE = "手机号码格式不正确"
NUMBER_DAILY_CAP = "该号码今日发送次数已达上限"
NUMBER_PER_MINUTE = "相同手机号码一分钟之内只可发送一次"
UNKNOWN_REASON = "未知原因,请联系客服"

MEANINGS: dict[str, str] = {
    SUCCESS: "success",
    BAD_CREDENTIALS: "wrong appId or appKey",
    ACCOUNT_LOCKED: "account locked, contact Veesing support",
    IP_RESTRICTED: "this host's IP address is not on the account's allow list",
    MISSING_PARAMETER: "a parameter is missing",
    BAD_PARAMETER: "a parameter is malformed",
    TEMPLATE_UNKNOWN: "the template does not exist or is not approved",
    BAD_TEMPLATE_ID: "the templateId is malformed",
    INSUFFICIENT_BALANCE: "insufficient balance: no credits left",
    ACCOUNT_DAILY_CAP: "the account's daily send volume is used up",
    BAD_PHONE: "the phone number is malformed",
    NUMBER_DAILY_CAP: "this number reached its daily send limit",
    NUMBER_PER_MINUTE: "the same number can receive one message per minute",
    UNKNOWN_REASON: "unknown reason, contact Veesing support",
}
"""notifykit's English for each message the document lists (../shared/veesing/API.md, the
send endpoint's table and the balance endpoint's list), shown beside the vendor's words."""
