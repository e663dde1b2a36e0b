"""Attachments: checked by content, photos re-encoded without metadata, stored by SHA-256 on disk."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import send_file
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import Refusal
from .models import Attachment, CaseFile, Person, Submission
from .scope import Scope
from .validation import formatted_values

IMAGE_FORMATS = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "GIF": "image/gif",
                 "WEBP": "image/webp", "BMP": "image/bmp"}
MAX_IMAGE_PIXELS = 60_000_000  # decoded size refused beyond this (a "decompression bomb")
THUMB_PIXELS = 320
OOXML = {"word/": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
         "xl/": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
         "ppt/": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx")}
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
KINDS_TEXT = "图片（JPG、PNG、WebP、GIF）、PDF、Word、Excel 或 PowerPoint 文件"


@dataclass
class Stored:
    """A file as kept: its hash, type, size, and for photos the size in pixels and a thumbnail."""

    sha256: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    thumb_sha256: str | None = None


def folder(root: str | os.PathLike) -> Path:
    """Return the attachments folder, made if missing."""
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_path(root: str | os.PathLike, sha: str) -> Path:
    """Return where a file with this hash lives: `ab/abcdef…`."""
    return Path(root) / sha[:2] / sha


def _write(root: str | os.PathLike, content: bytes) -> str:
    """Store bytes under their SHA-256 (atomically, once) and return the hash."""
    sha = hashlib.sha256(content).hexdigest()
    target = file_path(root, sha)
    if target.exists():
        return sha
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".up-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha


def sniff(content: bytes) -> str | None:
    """Name a document's type from its first bytes (not its name): PDF, Office, or None."""
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    if content.startswith(OLE):
        return "application/msword"
    if content.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(io.BytesIO(content)).namelist()
        except (zipfile.BadZipFile, ValueError):
            return None
        if "[Content_Types].xml" in names:
            for prefix, (kind, _ext) in OOXML.items():
                if any(n.startswith(prefix) for n in names):
                    return kind
    return None


def _image(content: bytes, max_side: int, name: str) -> tuple[bytes, str, int, int, bytes] | None:
    """Re-encode a photo: upright, scaled to max_side, without EXIF/GPS; return it and a thumbnail."""
    too_big = f"图片「{name}」尺寸过大，请换一张照片"
    try:
        with warnings.catch_warnings():
            # Pillow warns (or refuses) on huge images while reading the header; ours is the lower limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as probe:
                kind = probe.format
                width, height = probe.size
    except Image.DecompressionBombError:
        raise Refusal(422, "invalid", too_big) from None
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if kind not in IMAGE_FORMATS:
        return None
    if width * height > MAX_IMAGE_PIXELS:
        raise Refusal(422, "invalid", f"图片「{name}」尺寸过大（{width}×{height} 像素），请换一张照片")
    try:
        with Image.open(io.BytesIO(content)) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            keep_png = kind in ("PNG", "GIF") and (img.mode in ("RGBA", "LA", "P") or kind == "GIF")
            img = img.convert("RGBA" if keep_png and img.mode in ("RGBA", "LA", "P") else "RGB")
            img.thumbnail((max_side, max_side))
            out = io.BytesIO()
            if keep_png:
                img.save(out, "PNG", optimize=True)
                content_type = "image/png"
            else:
                img.save(out, "JPEG", quality=85, optimize=True)
                content_type = "image/jpeg"
            thumb = img.convert("RGB")
            thumb.thumbnail((THUMB_PIXELS, THUMB_PIXELS))
            small = io.BytesIO()
            thumb.save(small, "JPEG", quality=75)
            return out.getvalue(), content_type, img.width, img.height, small.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        raise Refusal(422, "invalid", f"图片「{name}」已损坏或无法读取，请重新拍摄或选择") from None


def store(root: str | os.PathLike, content: bytes, filename: str, person: Person, photo_only: bool,
          max_bytes: int, max_side: int) -> Attachment:
    """Check, re-encode where sensible, and store an upload; return its row (one per person and hash)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1][:200] or "未命名"
    if not content:
        raise Refusal(422, "invalid", f"文件「{name}」是空的，请重新选择")
    if len(content) > max_bytes:
        raise Refusal(413, "too_large",
                      f"文件「{name}」太大（{len(content) / 1e6:.1f} MB），单个文件不能超过 {max_bytes / 1e6:.0f} MB")
    image = _image(content, max_side, name)
    if image is not None:
        data, kind, width, height, thumb = image
        stored = Stored(_write(root, data), kind, len(data), width, height, _write(root, thumb))
    else:
        kind = None if photo_only else sniff(content)
        if kind is None:
            wanted = "图片（JPG、PNG、WebP、GIF）" if photo_only else KINDS_TEXT
            raise Refusal(422, "invalid", f"文件「{name}」不是可接受的类型，请上传{wanted}")
        stored = Stored(_write(root, content), kind, len(content))
    row = Attachment.get_or_none((Attachment.sha256 == stored.sha256) & (Attachment.uploaded_by == person.id))
    if row is None:
        row = Attachment.create(sha256=stored.sha256, uploaded_by=person.id, filename=name,
                                content_type=stored.content_type, size=stored.size, width=stored.width,
                                height=stored.height, thumb_sha256=stored.thumb_sha256)
    return row


def is_hash(text: str) -> bool:
    """Tell whether a text is a SHA-256 in lowercase hex, as attachment references are."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def serve(root: str | os.PathLike, row: Attachment, thumb: bool):
    """Answer with the file (or its thumbnail), privately cached; None when the file is gone."""
    if thumb and row.thumb_sha256:
        path, kind = file_path(root, row.thumb_sha256), "image/jpeg"
    else:
        path, kind = file_path(root, row.sha256), row.content_type
    if not path.exists():
        return None
    inline = kind.startswith("image/") or kind == "application/pdf"
    response = send_file(path, mimetype=kind, as_attachment=not inline, download_name=row.filename,
                         conditional=True, etag=True)
    response.headers["Cache-Control"] = "private, max-age=2592000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    return response


def as_json(row: Attachment) -> dict:
    """Describe a stored attachment for the API."""
    return {"id": row.sha256, "filename": row.filename, "content_type": row.content_type, "size": row.size,
            "width": row.width, "height": row.height}


def visible(scope: Scope, sha: str) -> Attachment | None:
    """Return the attachment if the person uploaded it or may see a case that refers to it."""
    mine = Attachment.get_or_none((Attachment.sha256 == sha) & (Attachment.uploaded_by == scope.person.id))
    if mine is not None:
        return mine
    condition = scope.case_condition()
    seen = (CaseFile.select(CaseFile.id).join(Submission)
            .where((CaseFile.sha256 == sha) & condition).exists())
    if not seen:
        return None
    return Attachment.select().where(Attachment.sha256 == sha).order_by(Attachment.id).first()


def references(form, data: Any) -> list[tuple[tuple, str]]:
    """Return (path, hash) of every attachment the data refers to, by the form's schema."""
    return formatted_values(form, data, "attachment")


def unknown(person: Person, form, data: Any, case_id: str | None = None) -> list[tuple[tuple, str]]:
    """Return the references a person may not attach: not uploaded by them nor already on the case."""
    refs = references(form, data)
    if not refs:
        return []
    hashes = {sha for _, sha in refs}
    ok = {a.sha256 for a in Attachment.select(Attachment.sha256)
          .where((Attachment.sha256.in_(hashes)) & (Attachment.uploaded_by == person.id))}
    if case_id:
        ok |= {f.sha256 for f in CaseFile.select(CaseFile.sha256)
               .where((CaseFile.submission == case_id) & CaseFile.sha256.in_(hashes))}
    return [(path, sha) for path, sha in refs if sha not in ok]


def not_photos(form, data: Any) -> list[tuple[tuple, str]]:
    """Return the references in photo fields (`ui:widget: photo`) that are not images."""
    refs = [(path, sha) for path, sha in references(form, data)
            if form.ui_at(path[:-1] if path and isinstance(path[-1], int) else path).get("ui:widget") == "photo"]
    if not refs:
        return []
    kinds = {(a.sha256, a.content_type.startswith("image/")) for a in Attachment.select(
        Attachment.sha256, Attachment.content_type).where(Attachment.sha256.in_({sha for _, sha in refs}))}
    known = {sha for sha, _ in kinds}
    images = {sha for sha, image in kinds if image}
    return [(path, sha) for path, sha in refs if sha in known and sha not in images]


def link(form, case_id: str, data: Any) -> None:
    """Record which attachments a case refers to (adding new ones; old ones stay in its history)."""
    hashes = {sha for _, sha in references(form, data)}
    if not hashes:
        return
    have = {f.sha256 for f in CaseFile.select(CaseFile.sha256).where(CaseFile.submission == case_id)}
    rows = [{"submission": case_id, "sha256": sha} for sha in sorted(hashes - have)]
    if rows:
        CaseFile.insert_many(rows).execute()
