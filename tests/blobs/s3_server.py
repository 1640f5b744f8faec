"""moto's S3 server with one fidelity fix: ListMultipartUploads reports when each upload was
really initiated. moto answers a fixed 2010 date for every upload, which would make every
upload look stale to an age-based sweep and no upload look young.

Run as ``python s3_server.py -H 127.0.0.1 -p PORT`` (moto.server's own arguments).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Any

from moto.s3.models import FakeMultipart
from moto.s3.responses import S3Response
from moto.server import main

MOTO_INITIATED = "2010-11-10T20:48:33.000Z"
_UPLOAD = re.compile(r"<Upload>.*?</Upload>", re.DOTALL)
_UPLOAD_ID = re.compile(r"<UploadId>([^<]+)</UploadId>")
initiated: dict[str, str] = {}

_create = FakeMultipart.__init__
_list = S3Response.list_multipart_uploads


def _created(self: FakeMultipart, *args: Any, **kwargs: Any) -> None:
    _create(self, *args, **kwargs)
    initiated[self.id] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _real_date(match: re.Match[str]) -> str:
    upload = match.group(0)
    upload_id = _UPLOAD_ID.search(upload)
    assert upload_id is not None and MOTO_INITIATED in upload, "moto changed its listing; revisit this fix"
    return upload.replace(MOTO_INITIATED, initiated[upload_id.group(1)])


def _listed(self: S3Response) -> Any:
    status, headers, body = _list(self)
    text = body.decode() if isinstance(body, bytes) else body
    return status, headers, _UPLOAD.sub(_real_date, text)


FakeMultipart.__init__ = _created  # type: ignore[method-assign]
S3Response.list_multipart_uploads = _listed  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
