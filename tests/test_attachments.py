"""Attachments: checked by content, photos re-encoded without metadata, stored by hash, served by scope."""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from server import attachments
from server.errors import Refusal
from server.models import Attachment, CaseFile, Person, Submission

MAX_SIDE = 2560
MAX_BYTES = 10_000_000
RED, BLUE = (255, 0, 0), (0, 0, 255)
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
INCIDENT = {"category": "fire_safety", "urgency": "normal", "description": "三栋楼道堆放杂物，堵塞消防通道",
            "occurred_at": "2026-11-20T09:30:00+08:00", "location": {"latitude": 22.63, "longitude": 110.15}}
MISSING = "「现场照片」中的附件不存在或不是您上传的，请重新上传"
NOT_FOUND = "找不到这个附件，或您无权查看"


# -- files made in code -----------------------------------------------------------------------

def encode(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def two_tone(size: tuple[int, int], left=RED, right=BLUE, mode="RGB") -> Image.Image:
    """An image whose left half and right half differ, so rotations can be told apart."""
    width, height = size
    img = Image.new(mode, size, left)
    img.paste(right, (width // 2, 0, width, height))
    return img


def gps_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "AcmeCam"
    exif[ExifTags.Base.Model] = "SecretModel-9"
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (22.0, 37.0, 48.36),
        ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (110.0, 9.0, 15.12),
    }
    return exif


@functools.cache
def phone_photo() -> bytes:
    """400×200 as stored by the camera, left red and right blue, to be shown turned 90° clockwise."""
    data = encode(two_tone((400, 200)), "JPEG", quality=95, exif=gps_exif(orientation=6))
    probe = Image.open(io.BytesIO(data))
    assert probe.getexif()[ExifTags.Base.Orientation] == 6 and probe.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    return data


@functools.cache
def big_photo() -> bytes:
    return encode(two_tone((5000, 3000)), "JPEG", quality=80)


@functools.cache
def gradient_jpeg() -> bytes:
    gray = Image.linear_gradient("L").resize((600, 400))
    return encode(Image.merge("RGB", (gray, gray.rotate(90, expand=False), gray)), "JPEG", quality=95)


def rgba_png() -> bytes:
    """Left half fully transparent, right half opaque blue; with EXIF GPS that must not survive."""
    return encode(two_tone((64, 48), left=(255, 0, 0, 0), right=(0, 0, 255, 255), mode="RGBA"), "PNG",
                  exif=gps_exif())


def transparent_gif() -> bytes:
    img = Image.new("P", (40, 40), 0)
    img.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    img.paste(1, (20, 0, 40, 40))
    return encode(img, "GIF", transparency=0)


def webp() -> bytes:
    return encode(two_tone((300, 200)), "WEBP", quality=90, exif=gps_exif())


def pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def zipped(members: dict[str, str]) -> bytes:
    """A zip with fixed timestamps, so the same members always give the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


def ooxml(part: str) -> bytes:
    """A minimal Office Open XML package: [Content_Types].xml plus one main part."""
    types = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
             'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>')
    return zipped({
        "[Content_Types].xml": types,
        part: '<?xml version="1.0" encoding="UTF-8"?><root>情况说明</root>',
    })


def docx() -> bytes:
    return ooxml("word/document.xml")


def plain_zip() -> bytes:
    return zipped({"notes.txt": "不是文档", "word.txt": "名字像但不是"})


def truncated_jpeg() -> bytes:
    data = gradient_jpeg()
    return data[: len(data) // 2]


def blank_png(side: int) -> bytes:
    """A one-bit PNG: a few kilobytes on disk, `side`² pixels once decoded."""
    return encode(Image.new("1", (side, side)), "PNG")


@functools.cache
def bomb_png() -> bytes:
    return blank_png(20_000)


@functools.cache
def over_limit_png() -> bytes:
    return blank_png(9_000)  # 81 megapixels: over our 60, under Pillow's own warning (89)


@functools.cache
def warning_range_png() -> bytes:
    return blank_png(10_000)  # 100 megapixels: past Pillow's warning, below its hard error


# -- helpers ----------------------------------------------------------------------------------

@pytest.fixture
def wgy(people) -> Person:
    people.make("wgy", "grid_worker@G1")
    return Person.get(Person.username == "wgy")


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "files"


def put(root: Path, person: Person, content: bytes, name: str = "file", photo_only: bool = False,
        max_bytes: int = MAX_BYTES) -> Attachment:
    return attachments.store(root, content, name, person, photo_only, max_bytes, MAX_SIDE)


def files_under(root) -> list[Path]:
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def stored_image(root: Path, sha: str) -> tuple[Image.Image, bytes]:
    data = attachments.file_path(root, sha).read_bytes()
    img = Image.open(io.BytesIO(data))
    img.load()
    return img, data


def near(pixel, color, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], color, strict=True))


def upload(client, people, user: str, *files: tuple[bytes, str], kind: str | None = None):
    query = f"?kind={kind}" if kind else ""
    return client.post(f"/api/v1/attachments{query}", headers=people.headers(user),
                       data={"file": [(io.BytesIO(content), name) for content, name in files]},
                       content_type="multipart/form-data")


def upload_one(client, people, user: str, content: bytes, name: str, kind: str | None = None) -> dict:
    response = upload(client, people, user, (content, name), kind=kind)
    assert response.status_code == 201, response.get_json()
    [item] = response.get_json()["items"]
    return item


def submit(client, people, user: str, photos: list[str], grid: str = "G1"):
    return client.post("/api/v1/forms/incident_report/submissions", headers=people.headers(user),
                       json={"grid": grid, "data": {**INCIDENT, "photos": photos}})


# -- photos are re-encoded ----------------------------------------------------------------------

def test_photo_is_turned_upright_and_loses_every_bit_of_metadata(wgy, root):
    row = put(root, wgy, phone_photo(), "IMG_0001.jpg", photo_only=True)
    assert (row.content_type, row.width, row.height) == ("image/jpeg", 200, 400)
    img, data = stored_image(root, row.sha256)
    assert img.format == "JPEG" and img.size == (200, 400)
    # turned 90° clockwise: what was the left (red) is now on top
    assert near(img.getpixel((100, 20)), RED) and near(img.getpixel((100, 380)), BLUE)
    assert "exif" not in img.info and len(img.getexif()) == 0
    assert b"Exif\x00\x00" not in data and b"AcmeCam" not in data and b"SecretModel" not in data
    assert row.size == len(data)


def test_stored_files_are_named_by_the_sha256_of_their_bytes(wgy, root):
    row = put(root, wgy, phone_photo(), "IMG_0001.jpg")
    path = attachments.file_path(root, row.sha256)
    assert path == root / row.sha256[:2] / row.sha256
    assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
    assert row.sha256 != hashlib.sha256(phone_photo()).hexdigest()  # the re-encoded bytes, not the upload
    thumb = attachments.file_path(root, row.thumb_sha256)
    assert hashlib.sha256(thumb.read_bytes()).hexdigest() == row.thumb_sha256
    assert files_under(root) == sorted([path, thumb])


def test_thumbnail_is_a_small_jpeg_of_the_upright_photo(wgy, root):
    row = put(root, wgy, phone_photo(), "IMG_0001.jpg")
    thumb, data = stored_image(root, row.thumb_sha256)
    assert thumb.format == "JPEG" and thumb.size == (160, 320)
    assert near(thumb.getpixel((80, 10)), RED) and near(thumb.getpixel((80, 310)), BLUE)
    assert b"Exif\x00\x00" not in data


def test_large_photo_is_scaled_to_the_longest_side(wgy, root):
    row = put(root, wgy, big_photo(), "big.jpg", photo_only=True)
    img, _ = stored_image(root, row.sha256)
    assert img.size == (2560, 1536) == (row.width, row.height)
    thumb, _ = stored_image(root, row.thumb_sha256)
    assert thumb.size == (320, 192)


def test_transparent_png_stays_png_with_its_transparency_and_without_exif(wgy, root):
    row = put(root, wgy, rgba_png(), "sign.png", photo_only=True)
    assert (row.content_type, row.width, row.height) == ("image/png", 64, 48)
    img, data = stored_image(root, row.sha256)
    assert img.format == "PNG" and img.mode == "RGBA"
    assert img.getpixel((5, 5))[3] == 0 and img.getpixel((60, 5)) == (0, 0, 255, 255)
    assert "exif" not in img.info and len(img.getexif()) == 0 and b"AcmeCam" not in data
    thumb, _ = stored_image(root, row.thumb_sha256)
    assert thumb.format == "JPEG"


def test_transparent_gif_is_kept_as_png(wgy, root):
    row = put(root, wgy, transparent_gif(), "anim.gif", photo_only=True)
    assert (row.content_type, row.width, row.height) == ("image/png", 40, 40)
    img, _ = stored_image(root, row.sha256)
    assert img.format == "PNG"
    rgba = img.convert("RGBA")
    assert rgba.getpixel((5, 5))[3] == 0 and rgba.getpixel((30, 5)) == (0, 128, 0, 255)


def test_webp_is_accepted_as_a_photo_and_stored_as_jpeg_without_exif(wgy, root):
    row = put(root, wgy, webp(), "photo.webp", photo_only=True)
    assert (row.content_type, row.width, row.height) == ("image/jpeg", 300, 200)
    img, data = stored_image(root, row.sha256)
    assert img.format == "JPEG" and near(img.getpixel((20, 100)), RED) and near(img.getpixel((280, 100)), BLUE)
    assert len(img.getexif()) == 0 and b"AcmeCam" not in data


def test_photo_type_comes_from_content_not_name(wgy, root):
    row = put(root, wgy, rgba_png(), "notes.txt", photo_only=True)
    assert row.content_type == "image/png" and row.filename == "notes.txt"


# -- documents are checked by their bytes -------------------------------------------------------

@pytest.mark.parametrize("content, name, kind", [
    pytest.param(pdf(), "情况说明.pdf", "application/pdf", id="pdf"),
    pytest.param(pdf(), "report.docx", "application/pdf", id="pdf-named-docx"),
    pytest.param(docx(), "会议纪要.docx", DOCX, id="docx"),
    pytest.param(docx(), "scan.jpg", DOCX, id="docx-named-jpg"),
    pytest.param(ooxml("xl/workbook.xml"), "台账.xlsx", XLSX, id="xlsx"),
    pytest.param(ooxml("ppt/presentation.xml"), "汇报.pptx", PPTX, id="pptx"),
    pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "old.doc", "application/msword", id="ole-doc"),
])
def test_documents_are_kept_byte_for_byte_with_the_type_their_content_shows(wgy, root, content, name, kind):
    row = put(root, wgy, content, name)
    assert (row.content_type, row.filename, row.size) == (kind, name, len(content))
    assert (row.width, row.height, row.thumb_sha256) == (None, None, None)
    assert row.sha256 == hashlib.sha256(content).hexdigest()
    assert attachments.file_path(root, row.sha256).read_bytes() == content


def test_file_name_loses_its_folders(wgy, root):
    row = put(root, wgy, pdf(), "C:\\Users\\张三\\Desktop\\通知.pdf")
    assert row.filename == "通知.pdf"
    assert put(root, wgy, docx(), "../../etc/会议.docx").filename == "会议.docx"


# -- refusals -----------------------------------------------------------------------------------

REFUSED = [
    pytest.param(b"just some text, honestly\n", "photo.jpg", False, 422, "不是可接受的类型", id="text-as-jpg"),
    pytest.param(b"just some text, honestly\n", "photo.jpg", True, 422, "不是可接受的类型", id="text-as-photo"),
    pytest.param(docx(), "会议纪要.docx", True, 422, "请上传图片", id="docx-when-photo-only"),
    pytest.param(pdf(), "scan.pdf", True, 422, "请上传图片", id="pdf-when-photo-only"),
    pytest.param(plain_zip(), "archive.docx", False, 422, "不是可接受的类型", id="plain-zip"),
    pytest.param(b"PK\x03\x04 not really a zip", "x.docx", False, 422, "不是可接受的类型", id="broken-zip"),
    pytest.param(truncated_jpeg(), "cut.jpg", True, 422, "损坏", id="truncated-jpeg"),
    pytest.param(b"", "empty.jpg", False, 422, "是空的", id="empty"),
]


@pytest.mark.parametrize("content, name, photo_only, status, words", REFUSED)
def test_unacceptable_files_are_refused_in_chinese_and_nothing_is_kept(wgy, root, content, name, photo_only,
                                                                         status, words):
    with pytest.raises(Refusal) as refused:
        put(root, wgy, content, name, photo_only=photo_only)
    assert refused.value.status == status
    assert words in refused.value.message
    if words != "损坏":  # the damaged-image message does not name the file (see report)
        assert f"「{name}」" in refused.value.message
    assert Attachment.select().count() == 0 and files_under(root) == []


def test_photo_only_refusal_names_only_image_kinds(wgy, root):
    with pytest.raises(Refusal) as refused:
        put(root, wgy, docx(), "a.docx", photo_only=True)
    assert "图片" in refused.value.message and "PDF" not in refused.value.message
    with pytest.raises(Refusal) as refused:
        put(root, wgy, plain_zip(), "a.zip")
    assert "PDF" in refused.value.message and "Word" in refused.value.message


def test_file_over_the_byte_limit_is_413(wgy, root):
    with pytest.raises(Refusal) as refused:
        put(root, wgy, pdf() + b"\x00" * 2000, "big.pdf", max_bytes=1000)
    assert refused.value.status == 413 and refused.value.code == "too_large"
    assert "太大" in refused.value.message
    assert put(root, wgy, pdf(), "small.pdf", max_bytes=len(pdf())).size == len(pdf())  # the limit itself is fine


def test_image_over_60_megapixels_is_refused(wgy, root):
    with pytest.raises(Refusal) as refused:
        put(root, wgy, over_limit_png(), "huge.png", photo_only=True)
    assert refused.value.status == 422 and "9000×9000" in refused.value.message
    assert files_under(root) == []


def test_decompression_bomb_png_is_refused_not_crashed(wgy, root):
    data = bomb_png()
    assert len(data) < 100_000  # small on disk
    with pytest.raises(Refusal) as refused:
        put(root, wgy, data, "bomb.png", photo_only=True)
    assert refused.value.status == 422 and "图片「bomb.png」尺寸过大" in refused.value.message


def test_image_between_pillow_warning_and_error_is_refused_without_warning(wgy, root):
    with pytest.raises(Refusal) as refused:
        put(root, wgy, warning_range_png(), "huge.png", photo_only=True)
    assert refused.value.status == 422 and "10000×10000" in refused.value.message


# -- one file per content, one row per uploader ------------------------------------------------

def test_same_content_twice_is_one_file_and_one_row(wgy, root):
    first = put(root, wgy, phone_photo(), "a.jpg")
    again = put(root, wgy, phone_photo(), "b.jpg")
    assert again.id == first.id and again.sha256 == first.sha256
    assert Attachment.select().count() == 1
    assert len(files_under(root)) == 2  # the photo and its thumbnail


def test_two_people_uploading_the_same_photo_is_one_file_two_rows(wgy, people, root):
    people.make("lisi", "grid_worker@G3")
    lisi = Person.get(Person.username == "lisi")
    mine = put(root, wgy, phone_photo(), "a.jpg")
    theirs = put(root, lisi, phone_photo(), "b.jpg")
    assert mine.sha256 == theirs.sha256 and mine.id != theirs.id
    assert {(r.uploaded_by_id, r.filename) for r in Attachment.select()} == {(wgy.id, "a.jpg"), (lisi.id, "b.jpg")}
    assert len(files_under(root)) == 2


# -- the upload endpoint ------------------------------------------------------------------------

@pytest.fixture
def api(client, people):
    people.make("wgy", "grid_worker@G1")
    return client


def test_upload_answers_201_with_ids_and_sizes(api, people, app):
    response = upload(api, people, "wgy", (phone_photo(), "IMG_0001.jpg"), (pdf(), "通知.pdf"))
    assert response.status_code == 201
    photo, doc = response.get_json()["items"]
    assert photo == {"id": photo["id"], "filename": "IMG_0001.jpg", "content_type": "image/jpeg",
                     "size": photo["size"], "width": 200, "height": 400}
    assert attachments.is_hash(photo["id"])
    assert doc == {"id": hashlib.sha256(pdf()).hexdigest(), "filename": "通知.pdf", "content_type": "application/pdf",
                   "size": len(pdf()), "width": None, "height": None}
    root = Path(app.config["UPLOAD_DIR"])
    assert attachments.file_path(root, photo["id"]).stat().st_size == photo["size"]


def test_big_photo_through_the_api_is_scaled(api, people):
    item = upload_one(api, people, "wgy", big_photo(), "big.jpg", kind="photo")
    assert (item["width"], item["height"]) == (2560, 1536)


def test_same_upload_twice_through_the_api_is_one_file_and_one_row(api, people, app):
    first = upload_one(api, people, "wgy", rgba_png(), "a.png")
    again = upload_one(api, people, "wgy", rgba_png(), "a.png")
    assert first["id"] == again["id"]
    assert Attachment.select().count() == 1 and len(files_under(app.config["UPLOAD_DIR"])) == 2


def test_photo_kind_accepts_images_and_refuses_documents(api, people):
    assert upload_one(api, people, "wgy", webp(), "x.webp", kind="photo")["content_type"] == "image/jpeg"
    response = upload(api, people, "wgy", (docx(), "纪要.docx"), kind="photo")
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid" and "「纪要.docx」不是可接受的类型" in body["message"]
    assert upload_one(api, people, "wgy", docx(), "纪要.docx")["content_type"] == DOCX


@pytest.mark.parametrize("content, name, status, words", [
    pytest.param(b"hello", "photo.jpg", 422, "不是可接受的类型", id="text-as-jpg"),
    pytest.param(plain_zip(), "a.zip", 422, "不是可接受的类型", id="plain-zip"),
    pytest.param(truncated_jpeg(), "cut.jpg", 422, "损坏", id="truncated-jpeg"),
    pytest.param(b"", "empty.pdf", 422, "是空的", id="empty"),
])
def test_refused_uploads_are_json_errors(api, people, app, content, name, status, words):
    response = upload(api, people, "wgy", (content, name))
    assert response.status_code == status
    assert words in response.get_json()["message"]
    assert Attachment.select().count() == 0 and files_under(app.config["UPLOAD_DIR"]) == []


def test_image_over_60_megapixels_through_the_api_is_422(api, people):
    response = upload(api, people, "wgy", (over_limit_png(), "huge.png"), kind="photo")
    assert response.status_code == 422 and "尺寸过大" in response.get_json()["message"]


def test_decompression_bomb_through_the_api_is_422(api, people):
    response = upload(api, people, "wgy", (bomb_png(), "bomb.png"), kind="photo")
    assert response.status_code == 422 and "尺寸过大" in response.get_json()["message"]


def test_upload_over_attachment_max_bytes_is_413(api, people, app):
    app.config["ATTACHMENT_MAX_BYTES"] = 1000
    response = upload(api, people, "wgy", (pdf() + b"\x00" * 5000, "big.pdf"))
    assert response.status_code == 413
    body = response.get_json()
    assert body["error"] == "too_large" and "「big.pdf」太大" in body["message"]
    assert Attachment.select().count() == 0


def test_upload_without_a_file_is_422_on_file(api, people):
    response = api.post("/api/v1/attachments", headers=people.headers("wgy"), data={"other": "x"},
                        content_type="multipart/form-data")
    assert response.status_code == 422
    assert [e["path"] for e in response.get_json()["errors"]] == ["/file"]


def test_upload_needs_a_token(api):
    response = api.post("/api/v1/attachments", data={"file": (io.BytesIO(pdf()), "a.pdf")},
                        content_type="multipart/form-data")
    assert response.status_code == 401
    assert Attachment.select().count() == 0


# -- who may fetch a file -----------------------------------------------------------------------

@pytest.fixture
def filed(client, people, shipped) -> dict:
    """wgy (G1) uploads a photo, a PDF and a docx, files a case at G1 naming all three, and keeps one private."""
    people.make("wgy", "grid_worker@G1")
    people.make("mate", "grid_worker@G1")
    people.make("sec", "community_secretary@M1")
    people.make("far", "grid_worker@G3")
    photo = upload_one(client, people, "wgy", phone_photo(), "现场.jpg")
    paper = upload_one(client, people, "wgy", pdf(), "通知.pdf")
    word = upload_one(client, people, "wgy", docx(), "纪要.docx")
    private = upload_one(client, people, "wgy", gradient_jpeg(), "未提交.jpg")
    response = submit(client, people, "wgy", [photo["id"]])
    assert response.status_code == 201, response.get_json()
    # documents go in a file field (resource_request's 附件材料); photo fields take images only
    request = {**RESOURCE_REQUEST, "attachments": [paper["id"], word["id"]]}
    filed_docs = client.post("/api/v1/forms/resource_request/submissions", headers=people.headers("wgy"),
                             json={"grid": "G1", "data": request})
    assert filed_docs.status_code == 201, filed_docs.get_json()
    return {"photo": photo["id"], "pdf": paper["id"], "docx": word["id"], "private": private["id"],
            "case": response.get_json()["id"]}


RESOURCE_REQUEST = {
    "category": "materials", "item": "小区健身器材", "description": "为城站小区活动场地申请一套太阳能健身器材",
    "quantity": 1, "unit": "套", "amount": 38600, "beneficiaries": ["all_residents", "elderly"],
    "beneficiary_count": 1200, "urgency": "normal", "justification": "小区活动场地没有健身设施，居民一致希望配置",
    "capacity": "社区负责日常维护", "expected_effect": "方便居民锻炼", "deliberated": True,
    "expected_date": "2026-12-31", "contact_name": "城站社区书记", "contact_phone": "13877560001",
}


def test_a_photo_field_takes_images_only(client, people, filed):
    response = submit(client, people, "wgy", [filed["photo"], filed["pdf"]])
    assert response.status_code == 422
    message = "「现场照片」只能放照片，请删去其中的文件"
    assert response.get_json()["errors"] == [{"path": "/photos/1", "message": message}]


ACCESS = [("wgy", "photo", 200), ("mate", "photo", 200), ("sec", "photo", 200), ("far", "photo", 404),
          ("wgy", "private", 200), ("mate", "private", 404), ("sec", "private", 404), ("far", "private", 404)]


@pytest.mark.parametrize("user, which, status", ACCESS)
def test_api_access_follows_the_uploader_and_the_case_scope(client, people, filed, app, user, which, status):
    sha = filed[which]
    response = client.get(f"/api/v1/attachments/{sha}", headers=people.headers(user), buffered=True)
    assert response.status_code == status
    if status == 200:
        assert response.mimetype == "image/jpeg"
        assert response.data == attachments.file_path(app.config["UPLOAD_DIR"], sha).read_bytes()
        assert hashlib.sha256(response.data).hexdigest() == sha
    else:
        assert response.get_json() == {"error": "not_found", "message": NOT_FOUND, "errors": []}


@pytest.mark.parametrize("user, which, status", ACCESS)
def test_web_access_follows_the_uploader_and_the_case_scope(web, filed, user, which, status):
    sha = filed[which]
    browser = web.client(user)
    for path in (f"/attachments/{sha}", f"/attachments/{sha}/thumb"):
        response = browser.get(path, buffered=True)
        assert response.status_code == status, path
        if status == 200:
            assert response.mimetype == "image/jpeg"
        else:
            assert NOT_FOUND in response.get_data(as_text=True)
    if status == 200:
        assert hashlib.sha256(browser.get(f"/attachments/{sha}", buffered=True).data).hexdigest() == sha


@pytest.mark.parametrize("sha", [
    pytest.param("0" * 64, id="never-stored"),
    pytest.param("not-a-hash", id="word"),
    pytest.param("ABC", id="short-upper"),
    pytest.param("g" * 64, id="not-hex"),
    pytest.param("0" * 63, id="63-chars"),
    pytest.param("0" * 65, id="65-chars"),
])
def test_unknown_or_malformed_hash_is_404(client, people, web, filed, sha):
    response = client.get(f"/api/v1/attachments/{sha}", headers=people.headers("wgy"), buffered=True)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    browser = web.client("wgy")
    assert browser.get(f"/attachments/{sha}", buffered=True).status_code == 404
    assert browser.get(f"/attachments/{sha}/thumb", buffered=True).status_code == 404


def test_upper_case_or_thumbnail_hash_is_not_a_way_in(client, people, web, filed, app):
    photo = Attachment.get(Attachment.sha256 == filed["photo"])
    for sha in (filed["photo"].upper(), photo.thumb_sha256):
        response = client.get(f"/api/v1/attachments/{sha}", headers=people.headers("wgy"), buffered=True)
        assert response.status_code == 404
        assert web.client("wgy").get(f"/attachments/{sha}", buffered=True).status_code == 404


def test_web_routes_need_a_signed_in_person(web, filed):
    anonymous = web.client()
    response = anonymous.get(f"/attachments/{filed['photo']}", buffered=True)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert anonymous.get(f"/attachments/{filed['photo']}/thumb", buffered=True).status_code == 302


def test_api_fetch_needs_a_token(client, filed):
    assert client.get(f"/api/v1/attachments/{filed['photo']}", buffered=True).status_code == 401


def test_thumbnail_is_served_for_photos(client, people, web, filed, app):
    row = Attachment.get(Attachment.sha256 == filed["photo"])
    expected = attachments.file_path(app.config["UPLOAD_DIR"], row.thumb_sha256).read_bytes()
    by_api = client.get(f"/api/v1/attachments/{filed['photo']}?thumb=1", headers=people.headers("sec"),
                        buffered=True)
    by_web = web.client("sec").get(f"/attachments/{filed['photo']}/thumb", buffered=True)
    for response in (by_api, by_web):
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
        assert response.data == expected
        assert max(Image.open(io.BytesIO(response.data)).size) == 320


def test_document_without_thumbnail_serves_the_file_for_thumb(client, people, filed):
    response = client.get(f"/api/v1/attachments/{filed['pdf']}?thumb=1", headers=people.headers("sec"),
                          buffered=True)
    assert response.status_code == 200 and response.data == pdf()


# -- response headers ---------------------------------------------------------------------------

def _fetchers(client, people, web):
    browser = web.client("sec")
    return [lambda sha: client.get(f"/api/v1/attachments/{sha}", headers=people.headers("sec"), buffered=True),
            lambda sha: browser.get(f"/attachments/{sha}", buffered=True)]


def test_served_files_are_private_and_not_sniffed(client, people, web, filed):
    for fetch in _fetchers(client, people, web):
        for which in ("photo", "pdf", "docx"):
            response = fetch(filed[which])
            assert response.status_code == 200
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            cache = response.headers["Cache-Control"]
            assert "private" in cache and "public" not in cache


def test_documents_pdf_inline_and_docx_as_download(client, people, web, filed):
    for fetch in _fetchers(client, people, web):
        photo, paper, word = fetch(filed["photo"]), fetch(filed["pdf"]), fetch(filed["docx"])
        assert photo.headers["Content-Disposition"].startswith("inline")
        assert paper.mimetype == "application/pdf" and paper.data == pdf()
        assert paper.headers["Content-Disposition"].startswith("inline")
        assert word.mimetype == DOCX and word.data == docx()
        disposition = word.headers["Content-Disposition"]
        assert disposition.startswith("attachment") and "filename*=UTF-8''%E7%BA%AA%E8%A6%81.docx" in disposition


# -- submissions that name files ----------------------------------------------------------------

@pytest.fixture
def reporting(client, people, shipped):
    people.make("wgy", "grid_worker@G1")
    people.make("other", "grid_worker@G1")
    people.make("boss", "admin@M1")
    return client


def test_submission_naming_own_upload_is_201_and_links_the_file(reporting, people):
    photo = upload_one(reporting, people, "wgy", phone_photo(), "现场.jpg")
    response = submit(reporting, people, "wgy", [photo["id"]])
    assert response.status_code == 201, response.get_json()
    sid = response.get_json()["id"]
    assert response.get_json()["data"]["photos"] == [photo["id"]]
    assert [(f.submission_id, f.sha256) for f in CaseFile.select()] == [(sid, photo["id"])]


def test_submission_naming_a_never_uploaded_hash_is_422_at_its_pointer(reporting, people):
    response = submit(reporting, people, "wgy", ["ab" * 32])
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"path": "/photos/0", "message": MISSING}]
    assert Submission.select().count() == 0 and CaseFile.select().count() == 0


def test_submission_naming_someone_elses_upload_is_422(reporting, people):
    mine = upload_one(reporting, people, "wgy", phone_photo(), "mine.jpg")
    theirs = upload_one(reporting, people, "other", gradient_jpeg(), "theirs.jpg")
    response = submit(reporting, people, "wgy", [mine["id"], theirs["id"]])
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"path": "/photos/1", "message": MISSING}]
    assert Submission.select().count() == 0 and CaseFile.select().count() == 0


def test_same_photo_uploaded_by_both_may_be_named_by_either(reporting, people):
    theirs = upload_one(reporting, people, "other", phone_photo(), "theirs.jpg")
    mine = upload_one(reporting, people, "wgy", phone_photo(), "mine.jpg")
    assert mine["id"] == theirs["id"]
    assert submit(reporting, people, "wgy", [mine["id"]]).status_code == 201


def _edit(client, people, user: str, sid: str, photos: list[str], revision: int = 1):
    return client.put(f"/api/v1/submissions/{sid}", headers=people.headers(user),
                      json={"data": {**INCIDENT, "description": "杂物已部分清理，仍需处理", "photos": photos},
                            "revision": revision})


def test_edit_keeping_a_photo_already_on_the_case_is_accepted(reporting, people):
    photo = upload_one(reporting, people, "wgy", phone_photo(), "现场.jpg")
    sid = submit(reporting, people, "wgy", [photo["id"]]).get_json()["id"]
    extra = upload_one(reporting, people, "boss", gradient_jpeg(), "复查.jpg")
    response = _edit(reporting, people, "boss", sid, [photo["id"], extra["id"]])
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["revision"] == 2
    assert response.get_json()["data"]["photos"] == [photo["id"], extra["id"]]
    assert {f.sha256 for f in CaseFile.select().where(CaseFile.submission == sid)} == {photo["id"], extra["id"]}


def test_edit_adding_a_photo_the_editor_did_not_upload_is_422(reporting, people):
    photo = upload_one(reporting, people, "wgy", phone_photo(), "现场.jpg")
    sid = submit(reporting, people, "wgy", [photo["id"]]).get_json()["id"]
    stranger = upload_one(reporting, people, "other", gradient_jpeg(), "别人的.jpg")
    response = _edit(reporting, people, "boss", sid, [photo["id"], stranger["id"]])
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"path": "/photos/1", "message": MISSING}]
    assert Submission.get_by_id(sid).revision == 1
    assert {f.sha256 for f in CaseFile.select()} == {photo["id"]}


def test_files_of_a_case_become_visible_to_its_viewers_only_once_named(reporting, people):
    people.make("sec", "community_secretary@M1")
    photo = upload_one(reporting, people, "wgy", phone_photo(), "现场.jpg")
    path = f"/api/v1/attachments/{photo['id']}"
    assert reporting.get(path, headers=people.headers("sec"), buffered=True).status_code == 404
    assert submit(reporting, people, "wgy", [photo["id"]]).status_code == 201
    assert reporting.get(path, headers=people.headers("sec"), buffered=True).status_code == 200


def test_several_files_with_one_refused_name_the_refused_one(client, people):
    people.make("wgy", "grid_worker@G1")
    response = upload(client, people, "wgy", (phone_photo(), "好的.jpg"), (b"just text", "坏的.jpg"), kind="photo")
    assert response.status_code == 422
    body = response.get_json()
    assert "其余文件已保存" in body["message"]
    assert [e["path"] for e in body["errors"]] == ["/file/1"]
    assert "坏的.jpg" in body["errors"][0]["message"]
