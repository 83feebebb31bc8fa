"""The one file part of a multipart/form-data body, for a framework that hands the model
raw bytes (KServe's v1 route does, for any body that is not JSON).

    python -c "from benchmarks.frameworks.multipart import file_part; help(file_part)"

Small on purpose: the uploads here are one PNG of a few hundred bytes; nothing of a
streaming parser is needed, and the peer must not depend on the project's packages.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)


def file_part(body: bytes, content_type: str, field: str = "image") -> bytes:
    """The content of the part named `field`; ValueError if the body has none."""
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise ValueError(f"not a multipart/form-data body: {content_type!r}")
    delimiter = b"--" + match.group(1).encode("latin-1")
    # Each part sits between two delimiters: "\r\n" headers "\r\n\r\n" content "\r\n".
    for part in body.split(delimiter)[1:-1]:
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep or not content.endswith(b"\r\n"):
            raise ValueError("malformed multipart part")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-disposition:"):
                name = _NAME.search(line)
                if name is not None and name.group(1) == field.encode():
                    return content[:-2]
    raise ValueError(f"no {field!r} part in the body")
