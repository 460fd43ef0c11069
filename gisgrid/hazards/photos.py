"""Hazard photos as content-addressed files (the one module of this package that writes files).

A photo is stored once under ``<photo_dir>/<sha256[:2]>/<sha256>.<suffix>``; the same photo
sent twice (a resubmitted report) is the same file. The ``hazard_photo`` rows keep the path
relative to ``photo_dir``, the SHA-256 and the size, so a copy can be verified later with
:func:`verify_photo`. A file is written to a temporary name and renamed into place, so a
reader never sees half a photo. Files written for a transaction that is rolled back stay
behind harmlessly (content-addressed; nothing points at them).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gisgrid.hazards.reports import PhotoContent


@dataclass(frozen=True)
class StoredPhoto:
    """A photo on disk: ``path`` relative to the photo directory, its SHA-256 and size."""

    path: str
    sha256: str
    bytes: int


def default_photo_dir(home: Path) -> Path:
    """Where photos live for a gisgrid home: ``<home>/photos``."""
    return Path(home) / "photos"


def write_photo(photo: PhotoContent, photo_dir: Path) -> StoredPhoto:
    """Store ``photo`` under ``photo_dir`` (idempotent) and describe it."""
    digest = hashlib.sha256(photo.data).hexdigest()
    relative = Path(digest[:2]) / f"{digest}.{photo.suffix}"
    target = Path(photo_dir) / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(photo.data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return StoredPhoto(relative.as_posix(), digest, len(photo.data))


def verify_photo(stored: StoredPhoto, photo_dir: Path) -> bool:
    """Whether the file of ``stored`` exists and still has its recorded checksum."""
    target = Path(photo_dir) / stored.path
    try:
        data = target.read_bytes()
    except OSError:
        return False
    return len(data) == stored.bytes and hashlib.sha256(data).hexdigest() == stored.sha256
