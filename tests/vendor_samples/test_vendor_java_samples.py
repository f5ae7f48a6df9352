"""The vendor's own Java samples, from its document, run against the Veesing sandbox.

``java/SmsCodeTest.java`` is the send sample copied verbatim from the vendor's document
(commons-httpclient 3 + fastjson); ``java/balance-fragment.txt`` is its OkHttp balance
fragment, wrapped in a class here. Only what a user edits changes: the host, appId, appKey
and the phone number. fastjson is not packaged by Debian, so a one-method stand-in backed by
Jackson provides ``JSONObject.parseObject``. The jars come from Debian's packages
(libcommons-httpclient-java, libcommons-logging-java, libcommons-codec-java,
libokhttp-java, libokio-java, libjackson2-databind-java): .ci/run installs them; where Java
or a jar is missing the tests are skipped with the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from notifykit_veesing.sandbox import VeesingSandbox

from notifykit.server import ServerThread

HERE = Path(__file__).parent / "java"
JARS_DIR = Path("/usr/share/java")
SEND_JARS = ["commons-httpclient.jar", "commons-logging.jar", "commons-codec.jar"]
JSON_JARS = ["jackson-databind.jar", "jackson-core.jar", "jackson-annotations.jar"]
BALANCE_JARS = ["okhttp.jar", "okio.jar"]


def _classpath(names: list[str]) -> str:
    missing = [n for n in names if not (JARS_DIR / n).is_file()]
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("no JDK (javac/java) on this machine")
    if missing:
        pytest.skip(f"Debian jars missing from {JARS_DIR}: {', '.join(missing)}")
    return ":".join(str(JARS_DIR / n) for n in names)


@pytest.fixture
def sandbox() -> Iterator[tuple[str, VeesingSandbox]]:
    box = VeesingSandbox(
        VeesingSandbox.Settings(port=0, app_id="JAVA-APP-ID", app_key="JAVA-APP-KEY", balance=10)
    )
    with ServerThread(box.app(), lifespan="on") as server:
        yield server.url, box


def _run_java(tmp_path: Path, sources: dict[str, str], classpath: str, main: str) -> str:
    for name, text in sources.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    out = tmp_path / "classes"
    subprocess.run(
        [
            "javac",
            "-encoding",
            "UTF-8",
            "-nowarn",
            "-d",
            str(out),
            "-cp",
            classpath,
            *[str(tmp_path / n) for n in sources],
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    proc = subprocess.run(
        ["java", "-Dfile.encoding=UTF-8", "-cp", f"{out}:{classpath}", main],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode("utf-8", errors="replace")


def _edit(sample: str, url: str, *, credentials: bool) -> str:
    """What a user edits in the vendor's sample: the host, the phone and (or not) the
    account's appId and appKey."""
    edited = sample.replace("https://vip.veesing.com", url).replace("156xxxx1090", "15612341090")
    if credentials:
        edited = edited.replace("2RYN7CQHL1M*****", "JAVA-APP-ID").replace(
            "WVNA4A0*****", "JAVA-APP-KEY"
        )
    assert edited.count(url) == 1
    return edited


def _run_send_sample(tmp_path: Path, classpath: str, url: str, *, credentials: bool) -> str:
    sample = (HERE / "SmsCodeTest.java").read_text(encoding="utf-8")
    shim = (HERE / "com/alibaba/fastjson/JSONObject.java").read_text(encoding="utf-8")
    sources = {
        "SmsCodeTest.java": _edit(sample, url, credentials=credentials),
        "com/alibaba/fastjson/JSONObject.java": shim,
    }
    return _run_java(tmp_path, sources, classpath, "SmsCodeTest")


def test_vendor_send_sample_succeeds_against_the_sandbox(
    tmp_path: Path, sandbox: tuple[str, VeesingSandbox]
) -> None:
    url, box = sandbox
    classpath = _classpath(SEND_JARS + JSON_JARS)
    stdout = _run_send_sample(tmp_path, classpath, url, credentials=True)
    answer = json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))
    assert answer["returnStatus"] == "1"  # what the sample's equals("1") needs
    assert "成功!" in stdout and "失败!" not in stdout
    assert box.state.accepted == 1


def test_vendor_sample_reports_failure_for_wrong_credentials(
    tmp_path: Path, sandbox: tuple[str, VeesingSandbox]
) -> None:
    url, box = sandbox
    classpath = _classpath(SEND_JARS + JSON_JARS)
    stdout = _run_send_sample(tmp_path, classpath, url, credentials=False)
    assert "账号或密码错误" in stdout and "失败!" in stdout
    assert box.state.accepted == 0


def test_vendor_okhttp_balance_fragment_gets_remain_point(
    tmp_path: Path, sandbox: tuple[str, VeesingSandbox]
) -> None:
    url, _ = sandbox
    classpath = _classpath(BALANCE_JARS)
    fragment = (HERE / "balance-fragment.txt").read_text(encoding="utf-8")
    fragment = _edit(fragment, url, credentials=True)
    source = (
        "import okhttp3.*;\n\npublic class GetBalance {\n"
        "    public static void main(String[] args) throws Exception {\n"
        f"{fragment}\n"
        '        System.out.println(response.code() + " " + response.body().string());\n'
        "    }\n}\n"
    )
    stdout = _run_java(tmp_path, {"GetBalance.java": source}, classpath, "GetBalance")
    status, _, body = stdout.strip().partition(" ")
    assert status == "200"
    answer = json.loads(body)
    assert answer["returnStatus"] == "1" and answer["remainPoint"] == "10"
