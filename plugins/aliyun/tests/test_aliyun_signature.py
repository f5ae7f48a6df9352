"""Both signatures against every test vector of the fact sheet (§5.1-5.3, §6.1)."""

from __future__ import annotations

import pytest
from notifykit_aliyun.signature import (
    Authorization,
    canonical_query,
    percent_encode,
    rpc_signature,
    rpc_string_to_sign,
    sha256_hex,
    v3_canonical_request,
    v3_signature,
)

VECTOR_A = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
VECTOR_B = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}
VECTOR_C = {
    "AccessKeyId": "testid",
    "Action": "DescribeDedicatedHosts",
    "Format": "JSON",
    "RegionId": "cn-beijing",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "edb2b34af0af9a6d14deaf7c1a5315eb",
    "SignatureVersion": "1.0",
    "Timestamp": "2023-03-13T08:34:30Z",
    "Version": "2014-05-26",
}


def test_vector_a_canonical_string_and_string_to_sign() -> None:
    assert canonical_query(VECTOR_A.items()) == (
        "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001"
        "&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B"
        "%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1"
        "&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"
        "&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D"
        "&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
    )
    assert rpc_string_to_sign("GET", VECTOR_A).startswith(
        "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    )
    assert "SignName%3D%25E9%2598%25BF" in rpc_string_to_sign("GET", VECTOR_A)


@pytest.mark.parametrize(
    ("params", "secret", "method", "expected"),
    [
        (VECTOR_A, "testSecret", "GET", "zJDF+Lrzhj/ThnlvIToysFRq6t4="),
        (VECTOR_A, "testSecret", "POST", "Xvhv7fPXrPkLVSnlt0jIr08o8NQ="),
        (VECTOR_B, "testsecret", "GET", "OLeaidS1JvxuMvnyHOwuJ+uX5qY="),
        (VECTOR_B, "testsecret", "POST", "MxbnVAM4w6sft9xjVpe/GCKueuk="),
        (VECTOR_C, "testsecret", "GET", "9NaGiOspFP5UPcwX8Iwt2YJXXuk="),
        (VECTOR_C, "testsecret", "POST", "ZvQ9xGiFnquSJRvj+WE6kdSpTwU="),
    ],
    ids=["A-get", "A-post", "B-get", "B-post", "C-get", "C-post"],
)
def test_rpc_vectors(params: dict[str, str], secret: str, method: str, expected: str) -> None:
    assert rpc_signature(method, params, secret) == expected
    # Signature itself is never part of what is signed.
    assert rpc_signature(method, {**params, "Signature": "x"}, secret) == expected


def test_vector_b_string_to_sign_exactly() -> None:
    assert rpc_string_to_sign("GET", VECTOR_B) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
        "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
        "%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z"
        "%26Version%3D2014-05-26"
    )


def test_percent_encode_rules() -> None:
    assert percent_encode("a b*c~d/e+f=") == "a%20b%2Ac~d%2Fe%2Bf%3D"


def test_v3_vector_d() -> None:
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-content-sha256": sha256_hex(b""),
    }
    query = [
        ("ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"),
        ("RegionId", "cn-shanghai"),
    ]
    canonical = v3_canonical_request("POST", query, headers, headers.keys(), sha256_hex(b""))
    assert canonical == (
        "POST\n/\n"
        "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
        "host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\n"
        "x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-acs-date:2023-10-26T10:22:32Z\nx-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n"
        "x-acs-version:2014-05-26\n\n"
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert sha256_hex(canonical.encode()) == (
        "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )
    signature = v3_signature(canonical, "YourAccessKeySecret")
    assert signature == "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    auth = Authorization("YourAccessKeyId", tuple(sorted(headers)), signature)
    header = auth.header()
    assert header == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )
    assert Authorization.parse(header) == auth
    assert Authorization.parse("ACS3-HMAC-SHA256 nonsense") is None
