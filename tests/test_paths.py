"""Output files: written whole or not at all with the umask's permissions, never through a
symbolic link, and a write failure (a real full disk) is one line."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import subprocess
import sys
import types
from pathlib import Path

import pytest

from octvideo.errors import OutputWriteError, RunStopped, TextFileError, UsageError
from octvideo.paths import (
    LOCK_NAME,
    AtomicOutput,
    AtomicOutputs,
    ReadFolders,
    atomic_output,
    check_folder,
    check_output_file,
    check_outside_data,
    fitted_name,
    hold_folder,
    is_missing,
    keep_unless_earlier,
    name_limit,
    nearest_existing,
    read_utf8,
    temporaries,
    why_not_a_file,
    write_atomically,
    write_failure,
)
from tests.failing_writes import fail_output
from tests.small_disk import fill, small_disk

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("how", ["write_atomically", "atomic_output", "AtomicOutput"])
def test_atomic_outputs_follow_the_umask(tmp_path, umask_022, how):
    path = tmp_path / "out.json"
    if how == "write_atomically":
        write_atomically(path, "{}")
    elif how == "atomic_output":
        with atomic_output(path) as tmp:
            tmp.write_text("{}")
    else:
        with AtomicOutput(path) as out:
            out.write(b"{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text() == "{}"
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_real_full_disk_is_one_line_and_keeps_the_earlier_file(request, tmp_path):
    disk = small_disk(request, tmp_path / "disk")
    path = disk / "summary.json"
    path.write_text("earlier")
    fill(disk, leave=8192)
    with pytest.raises(OutputWriteError) as info:
        write_atomically(path, b"x" * 2**20)
    err = info.value
    assert isinstance(err, RunStopped) and err.errno == errno.ENOSPC and err.existed
    assert str(err) == (
        f"cannot write {path} (No space left on device); the earlier file is kept; free space "
        "there or choose another folder"
    )
    assert path.read_text() == "earlier"
    assert sorted(os.listdir(disk)) == ["ballast", "summary.json"]  # no temporary file


def test_a_real_full_disk_inside_an_atomic_block_is_one_line(request, tmp_path):
    disk = small_disk(request, tmp_path / "disk")
    fill(disk, leave=8192)
    path = disk / "video.mp4"
    with pytest.raises(OutputWriteError, match=r"no part of it is left") as info:  # noqa: SIM117
        with atomic_output(path) as tmp, tmp.open("wb") as fh:  # a writer of its own, as PyAV's
            fh.write(bytes(2**20))
    assert "\n" not in str(info.value)
    assert sorted(os.listdir(disk)) == ["ballast"]


def test_an_error_that_is_no_write_failure_passes_unchanged(tmp_path):
    path = tmp_path / "video.mp4"
    path.write_text("earlier")
    with pytest.raises(FileNotFoundError, match="the source video"), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise FileNotFoundError(errno.ENOENT, "the source video")
    assert path.read_text() == "earlier"
    assert os.listdir(tmp_path) == ["video.mp4"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
def test_every_out_of_room_errno_becomes_one_line(tmp_path, code):
    with pytest.raises(OutputWriteError) as info, atomic_output(tmp_path / "out.png"):
        raise OSError(code, os.strerror(code))
    assert str(info.value).startswith(f"cannot write {tmp_path / 'out.png'} ({os.strerror(code)})")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("earlier", [True, False], ids=["earlier", "none"])
@pytest.mark.parametrize("how", ["write", "rename"])
def test_files_written_as_one_result_are_all_new_or_all_as_they_were(
    tmp_path, monkeypatch, how, earlier
):
    folder = tmp_path if earlier else tmp_path / "new"  # made for the pair, and removed again
    model, notes = folder / "m.pt", folder / "m.pt.json"
    if earlier:
        model.write_bytes(b"old model")
        notes.write_text("old notes")
    fail_output(monkeypatch, how, notes)  # the second part, after the first is complete
    with pytest.raises(OutputWriteError) as info, AtomicOutputs() as pair:
        pair.write(model, b"new model")
        pair.write(notes, "new notes")
    reason = os.strerror(errno.ENOSPC if how == "write" else errno.EPERM)
    kept = "the earlier m.pt and m.pt.json are kept" if earlier else "no part of m.pt or m.pt.json"
    assert str(info.value).startswith(f"cannot write {notes} ({reason}); {kept}")
    if earlier:  # the model renamed in place first is put back
        assert (model.read_bytes(), notes.read_text()) == (b"old model", "old notes")
    assert sorted(os.listdir(tmp_path)) == (["m.pt", "m.pt.json"] if earlier else [])
    monkeypatch.undo()
    with AtomicOutputs() as pair:
        pair.write(model, b"new model")
        pair.write(notes, "new notes")
    assert (model.read_bytes(), notes.read_text()) == (b"new model", "new notes")
    assert sorted(os.listdir(folder)) == ["m.pt", "m.pt.json"]  # no backup, no temporary


def test_a_temporary_name_keeps_the_extension_and_is_found_again(tmp_path):
    with atomic_output(tmp_path / "clip.pred.mp4") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".tmp.mp4")
        assert tmp.name.startswith(f".clip.pred.mp4.{os.getpid()}-")  # its writer's pid
        assert temporaries(tmp_path / "clip.pred.mp4") == [tmp]
        assert temporaries(tmp_path / "clip.mp4") == []


@pytest.mark.parametrize(
    "stem", ["L" * 251, "日" * 83, "\udcff" * 251], ids=["ascii", "cjk", "bytes"]
)
def test_a_name_at_the_limit_has_a_temporary_that_fits_and_is_found_again(tmp_path, stem):
    # ``.NAME.<pid>-<hex>.tmp.mp4`` cut NAME at 120 characters: 360 bytes of a 3-byte script
    # (Japanese) failed with "File name too long" where the output's own name was legal
    path = tmp_path / f"{stem}.mp4"
    assert len(os.fsencode(path.name)) <= 255
    with atomic_output(path) as tmp:
        assert len(os.fsencode(tmp.name)) <= 255 and tmp.name.endswith(".tmp.mp4")
        assert temporaries(path) == [tmp]
        tmp.write_bytes(b"whole")
    assert path.read_bytes() == b"whole" and os.listdir(tmp_path) == [path.name]


def test_a_temporary_fits_a_smaller_limit_of_its_file_system(tmp_path, monkeypatch):
    monkeypatch.setattr("octvideo.paths.name_limit", lambda folder: 143)  # eCryptfs
    path = tmp_path / ("é" * 68 + ".mp4")  # 140 bytes
    with atomic_output(path) as tmp:
        assert len(os.fsencode(tmp.name)) <= 143
        assert tmp.name.startswith(".é") and temporaries(path) == [tmp]
    assert path.exists()


def test_name_limit_is_the_file_systems_for_a_folder_not_made_yet(tmp_path):
    assert name_limit(tmp_path / "not" / "made") == os.pathconf(tmp_path, "PC_NAME_MAX")


def test_a_fitted_name_is_cut_between_characters_and_keeps_names_apart():
    assert fitted_name("clip.webm", ".part.mp4", 255) == "clip.webm.part.mp4"  # fits: as is
    long_a, long_b = "日" * 82 + "a.webm", "日" * 82 + "b.webm"
    fitted = [fitted_name(stem, ".part.mp4", 255) for stem in (long_a, long_b)]
    assert fitted[0] != fitted[1]
    for name in fitted:
        assert len(os.fsencode(name)) <= 255 and name.endswith(".part.mp4")
        assert name.startswith("日" * 70) and os.fsencode(name).decode("utf-8")  # no split byte


def _ended_pid() -> int:
    """The pid of a process that has ended (and was waited for)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


def test_a_write_removes_the_temporaries_its_gone_writers_left_and_keeps_a_running_ones(
    tmp_path,
):
    out = tmp_path / "preds.jsonl"
    ended = _ended_pid()
    left = {
        "ended": f".preds.jsonl.{ended}-0123abcd.tmp.jsonl",  # a writer killed mid-write
        "earlier": ".preds.jsonl.89abcdef.tmp.jsonl",  # an earlier version's name, no pid
        "mkstemp": ".preds.jsonl.k2_x9qz1.tmp",  # older checkpoint writes' name
    }
    kept = {
        "running": f".preds.jsonl.{os.getpid()}-0123abcd.tmp.jsonl",  # this process writes it
        "another output's": f".other.jsonl.{ended}-0123abcd.tmp.jsonl",
    }
    for name in [*left.values(), *kept.values()]:
        (tmp_path / name).write_text('{"done": 1}\n')
    assert len(temporaries(out)) == 4
    write_atomically(out, "new\n")
    assert sorted(os.listdir(tmp_path)) == sorted(["preds.jsonl", *kept.values()])
    assert temporaries(out) == [tmp_path / kept["running"]]


def test_a_temporary_whose_lock_is_held_is_kept_whatever_its_pid(tmp_path):
    # a writer in another pid namespace or on another host of a shared folder: its pid is no
    # process here, its lock is held
    tmp = tmp_path / f".m.onnx.{_ended_pid()}-0123abcd.tmp.onnx"
    tmp.write_bytes(b"half a model")
    with tmp.open("rb") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        write_atomically(tmp_path / "m.onnx", b"model")
        assert tmp.read_bytes() == b"half a model"
    write_atomically(tmp_path / "m.onnx", b"model")  # its writer gone: removed
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_a_temporary_not_to_be_opened_or_of_another_users_process_is_kept(tmp_path, monkeypatch):
    # a link in a temporary's name (opened without following links: refused) is no file a writer
    # of ours left
    target = tmp_path / "target.bin"
    target.write_bytes(b"x")
    link = tmp_path / f".m.onnx.{_ended_pid()}-0123abcd.tmp.onnx"
    os.symlink(target, link)
    write_atomically(tmp_path / "m.onnx", b"model")
    assert link.is_symlink() and target.read_bytes() == b"x"
    # a pid that signals refuse (EPERM) is another user's process: it runs, and may be the writer
    folder = tmp_path / "shared"
    folder.mkdir()
    tmp = folder / f".m.onnx.{_ended_pid()}-0123abcd.tmp.onnx"
    tmp.write_bytes(b"half a model")

    def refuse(pid: int, signum: int) -> None:
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "kill", refuse)
    write_atomically(folder / "m.onnx", b"model")
    assert tmp.read_bytes() == b"half a model"


# A writer in a process of its own: prints its temporary file, then waits for stdin to close.
_WRITER = """
import sys
from octvideo.paths import AtomicOutput

out = AtomicOutput(sys.argv[1])
out.write(b"half")
print(out.tmp, flush=True)
sys.stdin.read()
"""


def _child(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_a_writer_killed_mid_write_leaves_a_temporary_the_next_write_removes(tmp_path):
    out = tmp_path / "p.jsonl"
    proc = _child(_WRITER, str(out))
    try:
        tmp = Path(proc.stdout.readline().strip())
        write_atomically(out, "mine\n")  # two writers at once: the other's file is its own
        assert tmp.read_bytes() == b"half"
    finally:
        proc.kill()
        proc.wait()
    assert tmp.exists()  # what kill -9 leaves
    write_atomically(out, "again\n")
    assert os.listdir(tmp_path) == ["p.jsonl"] and out.read_text() == "again\n"


def _count_listings(monkeypatch, folder: Path) -> list[str]:
    """Records each listing of ``folder`` (``os.scandir``, ``os.listdir``) from now on."""
    listed = []
    for name in ("scandir", "listdir"):
        real = getattr(os, name)

        def counting(path=".", real=real, name=name):
            if os.path.abspath(path) == os.path.abspath(folder):
                listed.append(name)
            return real(path)

        monkeypatch.setattr(os, name, counting)
    return listed


def test_a_process_lists_a_folder_once_and_still_removes_each_outputs_dead_temporaries(
    tmp_path, monkeypatch
):
    # listing a folder of 5000 files at each write took 3.4 ms, per clip of a data synth
    ended = _ended_pid()
    dead = tmp_path / f".b.json.{ended}-0123abcd.tmp.json"  # another output's, there already
    dead.write_text("half")
    listed = _count_listings(monkeypatch, tmp_path)
    for name in ("a.json", "b.json", "a.json", "c.json"):
        write_atomically(tmp_path / name, "{}")
    assert len(listed) == 1
    assert not dead.exists()  # found by the first write's listing, removed by b.json's write
    later = tmp_path / f".a.json.{ended}-4567cdef.tmp.json"  # a writer killed since
    later.write_text("half")
    write_atomically(tmp_path / "a.json", "{}")
    assert later.exists() and len(listed) == 1  # left to a later run
    monkeypatch.undo()
    subprocess.run(
        [sys.executable, "-c", _LATER_RUN, str(tmp_path / "a.json")],
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json", "c.json"]


# A later run writing one output.
_LATER_RUN = """
import sys
from octvideo.paths import write_atomically

write_atomically(sys.argv[1], "{}")
"""


def test_a_folder_held_is_refused_to_another_and_a_refused_block_leaves_nothing(tmp_path):
    folder = tmp_path / "runs" / "a"
    with hold_folder(folder, "train"):
        refused = hold_folder(folder, "sweep", name="--out runs/a", advice="choose another --out")
        with pytest.raises(UsageError) as info, refused:
            pass
        assert (folder / LOCK_NAME).read_text() == f"{os.getpid()} train\n"  # the holder's
    assert str(info.value) == (
        f"--out runs/a is in use by octvideo train (pid {os.getpid()}); wait for it to end, or "
        "choose another --out (nothing was changed)"
    )
    assert os.listdir(tmp_path) == []  # the folders it made, empty, are removed with the lock
    with pytest.raises(UsageError, match="refused"), hold_folder(folder, "train"):
        (folder / "kept.txt").write_text("done\n")
        raise UsageError("refused")
    assert os.listdir(folder) == ["kept.txt"]


def test_the_lock_file_a_killed_holder_left_is_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text(f"{_ended_pid()} train\n")  # no process holds its lock
    with hold_folder(tmp_path, "train"):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()} train\n"
    assert os.listdir(tmp_path) == []


def test_the_lock_file_another_users_killed_holder_left_is_taken_over(tmp_path, monkeypatch):
    # it could not be opened for writing (mode 644, another owner): "cannot write in" the
    # folder, though the folder was writable; flock needs only a read-only descriptor
    (tmp_path / LOCK_NAME).write_text(f"{_ended_pid()} train\n")
    real_open = os.open

    def open_as_another_user(path, flags, *args):
        if Path(path).name == LOCK_NAME and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_as_another_user)
    with hold_folder(tmp_path, "train"):
        refused = hold_folder(tmp_path, "sweep")
        with pytest.raises(UsageError, match="is in use by octvideo train"), refused:
            pass  # still one holder at a time; the file names the killed holder's command
    assert os.listdir(tmp_path) == []


# Holds a folder, forks a child that outlives it (as a data-loader worker does a killed
# command), then waits; the child says it runs (its fork hooks done: it holds no lock), then
# waits for stdin to close; the parent prints the child's pid.
_HOLDER = """
import os, sys
from octvideo.paths import hold_folder

with hold_folder(sys.argv[1], "train"):
    child = os.fork()
    if child == 0:
        os.write(1, b"child\\n")  # one write each: the two lines never mix
        os.read(0, 1)
        os._exit(0)
    os.write(1, f"{child}\\n".encode())
    sys.stdin.read()
"""


def test_a_folder_is_held_by_a_process_and_freed_by_its_kill(tmp_path):
    proc = _child(_HOLDER, str(tmp_path))
    try:
        lines = {proc.stdout.readline().strip() for _ in range(2)}
        assert "child" in lines  # holding, and its child runs, without the lock
        with pytest.raises(UsageError) as info, hold_folder(tmp_path, "train"):
            pass
        assert str(info.value) == (
            f"{tmp_path} is in use by octvideo train (pid {proc.pid}); wait for it to end, or "
            "choose another folder (nothing was changed)"
        )
        proc.kill()  # its forked child lives on, and keeps no lock
        proc.wait()
        with hold_folder(tmp_path, "train"):
            pass
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()  # the child's stdin: it ends
    assert os.listdir(tmp_path) == []


def _link(tmp_path):
    target = tmp_path / "precious.jsonl"
    target.write_text("keep me\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(target)
    return link, target


def test_check_output_file_refuses_a_symbolic_link(tmp_path):
    link, target = _link(tmp_path)
    with pytest.raises(UsageError) as info:
        check_output_file("--out", link)
    assert str(info.value) == (
        f"--out {link} is a symbolic link to {target}; give the real path or remove the link"
    )


def test_check_output_file_makes_no_folder_and_the_first_write_makes_it(tmp_path):
    out = tmp_path / "new" / "deeper" / "o.ckpt"
    assert check_output_file("--out", out) == out
    assert list(tmp_path.iterdir()) == []  # a command refused after its checks leaves nothing
    with pytest.raises(UsageError, match=r"cannot write in /proc \(No such file or directory\)"):
        check_output_file("--out", "/proc/x.ckpt")  # an existing folder is written in, still
    assert write_atomically(out, "x") == out
    assert out.read_text() == "x"


@pytest.mark.parametrize("how", ["write_atomically", "atomic_output", "AtomicOutput"])
def test_a_failed_write_removes_the_folders_it_made_and_keeps_the_rest(tmp_path, monkeypatch, how):
    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    (tmp_path / "kept").mkdir()
    out = tmp_path / "kept" / "new" / "deeper" / "o.json"
    with pytest.raises(OutputWriteError):
        if how == "write_atomically":
            monkeypatch.setattr("octvideo.paths.os.replace", full)  # the rename fails
            write_atomically(out, "x")
        elif how == "atomic_output":
            with atomic_output(out):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        else:
            with AtomicOutput(out) as output:
                output.write("x")
                raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept"]


def test_a_folder_that_takes_no_files_is_one_line_naming_the_output():
    with pytest.raises(OutputWriteError, match=r"^cannot write /proc/o.json \(No such file or "):
        write_atomically("/proc/o.json", "x")


def test_a_dangling_symbolic_link_is_refused_too(tmp_path):
    link = tmp_path / "out.onnx"
    link.symlink_to(tmp_path / "nowhere.onnx")
    with pytest.raises(UsageError, match="is a symbolic link to"):
        check_output_file("--out", link)
    assert not (tmp_path / "nowhere.onnx").exists()


@pytest.mark.parametrize("how", ["write_atomically", "atomic_output"])
def test_atomic_writers_never_write_through_or_replace_a_link(tmp_path, how):
    link, target = _link(tmp_path)
    with pytest.raises(UsageError, match="give the real path or remove the link"):
        if how == "write_atomically":
            write_atomically(link, "new")
        else:
            with atomic_output(link) as tmp:
                tmp.write_text("new")
    assert target.read_text() == "keep me\n" and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl", "precious.jsonl"]


@pytest.mark.parametrize("how", ["check_output_file", "write_atomically", "atomic_output"])
def test_a_named_pipe_at_an_output_path_is_refused_and_kept(tmp_path, how):
    fifo = tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(UsageError) as info:
        if how == "check_output_file":
            check_output_file("--out", fifo)
        elif how == "write_atomically":
            write_atomically(fifo, "new", "--out")
        else:
            with atomic_output(fifo, "--out") as tmp:
                tmp.write_text("new")
    assert str(info.value).startswith(
        f"--out {fifo} is a pipe, a device or a socket, not a file; give a file name"
    )
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["out.jsonl"]


@pytest.mark.parametrize("how", ["write_atomically", "atomic_output"])
def test_a_folder_at_an_output_path_is_refused_before_any_write(tmp_path, how):
    # was "cannot write OUT (Is a directory); the earlier file is kept" after all the work
    folder = tmp_path / "out.csv"
    (folder / "inside").mkdir(parents=True)
    with pytest.raises(UsageError) as info:
        if how == "write_atomically":
            write_atomically(folder, "new", "--out")
        else:
            with atomic_output(folder, "--out") as tmp:
                tmp.write_text("new")
    assert str(info.value) == f"--out {folder} is a folder; give a file name"
    assert os.listdir(tmp_path) == ["out.csv"] and os.listdir(folder) == ["inside"]


@pytest.mark.parametrize("mode", [0o444, 0o400])
def test_keep_unless_earlier_refuses_another_file_and_a_read_only_one(tmp_path, mode):
    out = tmp_path / "o.jsonl"
    out.write_text("mine\n")
    with pytest.raises(UsageError) as info:
        keep_unless_earlier("--out", out, lambda p: p.read_text() == "ours\n", "a record file")
    assert str(info.value) == (
        f"--out {out} exists and is not a record file: writing it would destroy it; choose "
        "another path or remove it"
    )
    keep_unless_earlier("--out", out, lambda p: True, "a record file")  # an earlier one: kept
    out.chmod(mode)  # its owner made it read-only: refused, also to root
    with pytest.raises(UsageError) as info:
        keep_unless_earlier("--out", out, lambda p: True, "a record file")
    assert str(info.value) == (
        f"--out {out} is read-only: make it writable (chmod u+w) to replace it, or choose "
        "another path"
    )
    keep_unless_earlier("--out", tmp_path / "new.jsonl", lambda p: False, "a record file")
    assert out.read_text() == "mine\n" and sorted(os.listdir(tmp_path)) == ["o.jsonl"]


@pytest.mark.parametrize("cause", ["read-only mount", "another user's file"])
def test_keep_unless_earlier_names_the_cause_a_chmod_would_not_fix(tmp_path, monkeypatch, cause):
    # "make it writable (chmod u+w)" was said for both, and neither can follow it
    out = tmp_path / "o.jsonl"
    out.write_text("ours\n")
    monkeypatch.setattr("octvideo.paths.os.access", lambda *args: False)
    if cause == "read-only mount":  # access() fails there for root too
        monkeypatch.setattr(
            "octvideo.paths.os.statvfs", lambda path: types.SimpleNamespace(f_flag=os.ST_RDONLY)
        )
        tail = "is on a read-only file system: remount it read-write to replace it, or choose"
    else:  # a file of root's (or the tester's) in a folder anyone may write, for another user
        owner = out.stat().st_uid
        monkeypatch.setattr("octvideo.paths.os.geteuid", lambda: owner + 1)
        monkeypatch.setattr("octvideo.paths.pwd.getpwuid", lambda uid: {}[uid])  # no name
        tail = f"belongs to user {owner} and is not writable by you: choose"
    with pytest.raises(UsageError) as info:
        keep_unless_earlier("--out", out, lambda p: True, "a record file")
    assert str(info.value) == f"--out {out} {tail} another path"
    assert out.read_text() == "ours\n"


def test_an_output_name_too_long_for_the_file_system_is_one_line(tmp_path):
    path = tmp_path / ("a" * 300 + ".jsonl")
    with pytest.raises(UsageError) as info:
        check_output_file("--out", path)
    assert str(info.value) == f"--out {path}: File name too long; choose another path"


def test_a_device_at_an_output_path_is_refused():
    with pytest.raises(UsageError, match=r"^--out /dev/null is a pipe, a device or a socket"):
        check_output_file("--out", "/dev/null")
    with pytest.raises(UsageError, match="not a file"):
        AtomicOutput("/dev/null")


def test_nearest_existing_is_the_path_or_its_closest_existing_ancestor(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("")
    assert nearest_existing(tmp_path / "a") == tmp_path / "a"
    assert nearest_existing(tmp_path / "a" / "b" / "c") == tmp_path / "a"
    assert nearest_existing(tmp_path / "a" / "f" / "x") == tmp_path / "a" / "f"  # a file too
    monkeypatch.chdir(tmp_path)
    assert nearest_existing("x/y") == Path(".")


def test_check_folder_without_create_refuses_what_making_it_would_and_makes_nothing(
    tmp_path, monkeypatch
):
    blocker = tmp_path / "results.txt"
    blocker.write_text("x")
    for create in (False, True):  # the same refusal, naming the file in the way
        with pytest.raises(UsageError) as err:
            check_folder("--out", blocker / "run" / "a", advice="choose another", create=create)
        assert str(err.value) == (
            f"--out {blocker / 'run' / 'a'}: {blocker} is a file, not a folder; choose another"
        )
    new = tmp_path / "new" / "run"
    assert check_folder("--out", new, create=False) == new
    assert not (tmp_path / "new").exists()
    monkeypatch.setattr("octvideo.paths.os.access", lambda *args: False)  # as for another user
    with pytest.raises(UsageError) as err:
        check_folder("--out", new, create=False)
    assert str(err.value) == (
        f"--out {new}: cannot write in {new} (Permission denied); choose another path"
    )


def test_a_folder_on_a_read_only_file_system_is_named_as_such(tmp_path, monkeypatch):
    # access() fails there for root too; it was reported as "Permission denied", so users chmod
    new = tmp_path / "new" / "run"
    monkeypatch.setattr("octvideo.paths.os.access", lambda *args: False)
    monkeypatch.setattr(
        "octvideo.paths.os.statvfs", lambda path: types.SimpleNamespace(f_flag=os.ST_RDONLY)
    )
    with pytest.raises(UsageError) as err:
        check_folder("--out", new, create=False)
    assert str(err.value) == (
        f"--out {new}: cannot write in {new} (Read-only file system); remount it read-write or "
        "choose another path"
    )


def test_a_real_read_only_mount_is_named_as_such(request, tmp_path):
    disk = small_disk(request, tmp_path / "disk")
    remount = ["mount", "-o", "remount,ro", str(disk)]
    if subprocess.run(remount, capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot remount the small disk read-only here")
    for create in (False, True):
        with pytest.raises(UsageError, match=r"\(Read-only file system\); remount it read-write"):
            check_folder("--out", disk / "run", create=create)
    assert os.listdir(disk) == []


def test_text_keeps_a_names_bytes_that_are_not_utf8_as_escapes(tmp_path):
    # a name's undecodable bytes (surrogateescape) made every str writer fail after the work
    name = os.fsdecode(b"names/bad\xff\xfename.mp4")
    out = write_atomically(tmp_path / "r.jsonl", json.dumps({"path": name}, ensure_ascii=False))
    assert out.read_bytes() == b'{"path": "names/bad\\udcff\\udcfename.mp4"}'
    assert os.fsencode(json.loads(out.read_text(encoding="utf-8"))["path"]) == os.fsencode(name)
    with AtomicOutput(tmp_path / "r.csv") as csv_out:
        csv_out.write(f"{name},1\n")
    assert (tmp_path / "r.csv").read_text(encoding="utf-8") == "names/bad\\udcff\\udcfename.mp4,1\n"


def test_write_failure_gives_the_reason_an_output_was_not_written(tmp_path):
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert write_failure(full) == "No space left on device"
    stopped = OutputWriteError(tmp_path / "a.csv", full, existed=False)
    assert write_failure(stopped) == "No space left on device"  # not the whole sentence
    assert write_failure(OSError("lost")) == "lost"  # no errno, no strerror


def test_read_utf8_drops_the_mark_and_names_the_first_bad_byte_and_its_line(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffa\r\nb\n".encode())
    assert read_utf8(path, 8) == "a\r\nb\n"  # 8 bytes with the mark: taken, newlines as they are
    with pytest.raises(TextFileError) as caught:
        read_utf8(path, 7)
    assert (caught.value.limit, caught.value.line, caught.value.byte) == (7, None, None)
    # the line and the byte are counted from the file's start, the mark included
    path.write_bytes(b"\xef\xbb\xbfa 0\nb\xff 1\n")
    with pytest.raises(TextFileError) as caught:
        read_utf8(path, 100)
    assert (caught.value.path, caught.value.line, caught.value.byte) == (path, 2, 0xFF)


def test_why_not_a_file_says_what_an_input_path_is(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    os.symlink("nope", tmp_path / "dangling")
    os.symlink("loop", tmp_path / "loop")
    os.symlink("fifo", tmp_path / "to_fifo")
    os.symlink("/dev/null", tmp_path / "to_device")
    os.symlink("file", tmp_path / "to_file")
    expected = {
        "file": None,
        "to_file": None,
        "missing": "does not exist",
        "file/below": "does not exist (a folder on its path is a file)",
        "folder": "is a directory",
        "fifo": "is a pipe",
        "to_fifo": "links to a pipe",
        "to_device": "links to a device",
        "dangling": "is a broken symlink (to nope)",
        "loop": "is a symlink loop",
    }
    assert {name: why_not_a_file(tmp_path / name) for name in expected} == expected
    assert why_not_a_file("/dev/null") == "is a device"
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)  # looked at, never opened
    missing = [name for name, why in expected.items() if is_missing(why)]
    assert missing == ["missing", "file/below"] and not is_missing(None)


def test_a_folder_whose_lock_cannot_be_made_is_refused_naming_why(tmp_path, monkeypatch):
    # a folder not writable (chmod 555, a read-only mount) that holds no lock file to share:
    # the reason is named, not taken for a lock file removed again and again by its holders
    folder = tmp_path / "r"
    folder.mkdir()
    real_open = os.open

    def open_in_a_read_only_folder(path, flags, *args):
        if Path(path).name == LOCK_NAME and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_in_a_read_only_folder)
    held = hold_folder(folder, "train", name=f"run folder {folder}", advice="choose another --out")
    with pytest.raises(UsageError) as info, held:
        pass
    assert str(info.value) == (
        f"run folder {folder}: cannot write in {folder} (Permission denied); choose another --out"
    )
    assert os.listdir(folder) == []


def test_an_output_folder_in_a_folder_read_as_data_is_refused_through_links(tmp_path):
    root = tmp_path / "data" / "train"
    root.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data")
    data = ReadFolders([("the class folders of data.train_list", root)])
    advice = "choose another --out"
    with pytest.raises(UsageError) as caught:
        check_outside_data("run folder", root, data, advice)
    assert str(caught.value) == (
        f"run folder {root} is the class folders of data.train_list: the next command reading "
        "the data would read what is written there with it; choose another --out (nothing was "
        "changed)"
    )
    for inside in (root / "run", tmp_path / "link" / "train" / "a" / "b", root / "x" / ".."):
        with pytest.raises(UsageError, match=f"^run folder {inside} is (inside {root}, )?the "):
            check_outside_data("run folder", inside, data, advice)
    # beside it, above it, or a name that only starts like it
    for outside in (tmp_path / "data" / "train2", tmp_path / "data", tmp_path / "runs" / "a"):
        check_outside_data("run folder", outside, data, advice)
    assert not (root / "run").exists() and not (tmp_path / "runs").exists()


def test_a_read_only_folder_with_a_lock_file_left_is_refused_before_the_block(
    tmp_path, monkeypatch
):
    # a lock file left by a killed command opens (and locks) in a folder that has since become
    # read-only (chmod 555: root ignores it, so the calls are refused here): the folder is
    # refused before the command's work, and a lock file that cannot be removed as the block
    # ends does not hide the block's own error
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / LOCK_NAME).write_text("123 train\n")
    real_open, real_unlink = os.open, os.unlink

    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    def open_in_a_read_only_folder(path, flags, *args, **kwargs):
        new = flags & os.O_CREAT and not os.path.lexists(path)
        nameless = flags & os.O_TMPFILE == os.O_TMPFILE and Path(path) == folder
        if Path(path).parent == folder and new or nameless:
            denied(path)
        return real_open(path, flags, *args, **kwargs)

    def unlink_in_a_read_only_folder(path, *args, **kwargs):
        if Path(path).parent == folder:
            denied(path)
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink_in_a_read_only_folder)
    with pytest.raises(ValueError, match="the block's own"), hold_folder(folder, "train"):
        raise ValueError("the block's own error")
    monkeypatch.setattr(os, "open", open_in_a_read_only_folder)
    held = hold_folder(folder, "train", name=f"run folder {folder}", advice="choose another --out")
    with pytest.raises(UsageError) as info, held:
        raise AssertionError("the block ran")
    assert str(info.value) == (
        f"run folder {folder}: cannot write in {folder} (Permission denied); choose another --out"
    )
    assert os.listdir(folder) == [LOCK_NAME]


def test_an_output_folder_through_a_link_and_dot_dot_is_resolved_as_the_system_does(tmp_path):
    # LINK/../train is the train beside the folder LINK points to: abspath made it the one
    # beside the link, and the run was written among the class folders
    root = tmp_path / "dsf" / "train"
    root.mkdir(parents=True)
    (tmp_path / "dsf" / "val").mkdir()
    (tmp_path / "lnk").symlink_to(tmp_path / "dsf" / "val")
    data = ReadFolders([("the class folders of data.train_list", root)])
    for out in (tmp_path / "lnk" / ".." / "train", tmp_path / "lnk" / ".." / "train" / "run"):
        with pytest.raises(UsageError, match=f"^run folder {out} is "):
            check_outside_data("run folder", out, data, "choose another --out")
    check_outside_data("run folder", tmp_path / "lnk" / ".." / "runs", data, "choose another")
