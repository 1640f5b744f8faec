"""`keyhole doctor` finds a blob store it cannot write: a missing bucket."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import PYTHON, server_env

from .conftest import BUCKET, S3Server


def _blob_finding(home: Path, blob_url: str, s3: S3Server) -> tuple[int, dict[str, str]]:
    result = subprocess.run(
        [PYTHON, "-m", "keyhole.cli", "doctor", "--format", "json"],
        env=server_env(home, KEYHOLE_BLOB_URL=blob_url, **s3.env),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout, result.stderr[-3000:]
    findings = {finding["check"]: finding for finding in json.loads(result.stdout)}
    return result.returncode, findings["blob store"]


def test_doctor_checks_the_bucket(tmp_path: Path, s3: S3Server) -> None:
    _, present = _blob_finding(tmp_path, f"s3://{BUCKET}/doctor-test", s3)
    assert present["status"] == "ok", present
    assert s3.keys("doctor-test/") == []  # the probe object was deleted again

    _, missing = _blob_finding(tmp_path, "s3://no-such-bucket/x", s3)
    assert missing["status"] == "problem"
    assert "bucket exists" in missing["fix"]
    assert s3.secret_key not in json.dumps(missing)
