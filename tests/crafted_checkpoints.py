"""Checkpoint files made to take far more memory to load than they take on disk."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import torch

_CENTRAL = b"PK\x01\x02"  # a central-directory entry
_END = b"PK\x05\x06"  # the end-of-central-directory record


def inflating(path: Path, mib: int = 64) -> Path:
    """A checkpoint of one ``mib`` MiB tensor of zeros whose member is deflated (torch writes
    members stored): about 1/1000 of that on disk, and torch.load inflates it whole, so a 4 MB
    file can take 4 GiB."""
    saved = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(mib * 2**18)}}, saved)  # float32: mib MiB
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            deflate = info.file_size > 2**20
            member = zipfile.ZipInfo(info.filename, info.date_time)
            member.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            with source.open(info) as src, target.open(member, "w", force_zip64=deflate) as dst:
                while chunk := src.read(2**20):
                    dst.write(chunk)
    return path


def _entries(data: bytes) -> list[int]:
    offsets, at = [], data.find(_CENTRAL)
    while at >= 0:
        offsets.append(at)
        at = data.find(_CENTRAL, at + 4)
    return offsets


def _name(data: bytes, at: int) -> str:
    length = struct.unpack_from("<H", data, at + 28)[0]
    return data[at + 46 : at + 46 + length].decode()


def declaring(path: Path, size: int) -> Path:
    """A checkpoint whose zip directory says its tensor member (stored) is ``size`` bytes."""
    torch.save({"state_dict": {"w": torch.zeros(16)}}, path)
    data = bytearray(path.read_bytes())
    for at in _entries(bytes(data)):
        if _name(bytes(data), at).endswith("/data/0"):
            struct.pack_into("<II", data, at + 20, size, size)  # compressed, uncompressed
    path.write_bytes(bytes(data))
    return path


def sharing(path: Path, copies: int = 8) -> Path:
    """A checkpoint whose zip directory lists its tensor's bytes ``copies`` more times under
    other names: each member fits in the file, all of them together do not."""
    torch.save({"state_dict": {"w": torch.zeros(2**14)}}, path)  # 64 KiB of tensor data
    data = path.read_bytes()
    end = data.rfind(_END)
    entries = _entries(data[:end])
    at = next(a for a in entries if _name(data, a).endswith("/data/0"))
    name = _name(data, at).encode()
    name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, at + 28)
    entry = data[at : at + 46 + name_len + extra_len + comment_len]
    more = [entry.replace(name, name[:-2] + f"{i:02d}".encode()) for i in range(copies)]
    last = entries[-1]
    last_end = last + 46 + sum(struct.unpack_from("<HHH", data, last + 28))
    # the directory and the plain end record; torch's zip64 end records are dropped
    directory = data[entries[0] : last_end] + b"".join(more)
    count = len(entries) + copies
    record = bytearray(data[end : end + 22])
    struct.pack_into("<HHII", record, 8, count, count, len(directory), entries[0])
    path.write_bytes(data[: entries[0]] + directory + bytes(record))
    return path
