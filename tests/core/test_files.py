"""read_user_file: regular files only, at most the limit, never blocking, one clear line otherwise."""

import os
import socket
import threading
from pathlib import Path

import pytest

from core.files import CHUNK_BYTES, FileReadError, read_user_file, size_label

LIMIT = 2**20


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def within(seconds: float, call):
    """call() in a thread; fails (instead of hanging the suite) if it has not returned in time."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed back to the test below
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def refusal(path, limit=LIMIT, **kwargs) -> str:
    with pytest.raises(FileReadError) as caught:
        within(10, lambda: read_user_file(path, limit, **kwargs))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_regular_file_is_read_whole(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"a": 1}')
    assert read_user_file(path, LIMIT) == b'{"a": 1}'
    assert read_user_file(str(path), LIMIT) == b'{"a": 1}'


def test_exactly_the_limit_is_read_and_one_byte_more_is_refused(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b"x" * LIMIT)
    assert read_user_file(path, LIMIT) == b"x" * LIMIT
    path.write_bytes(b"x" * (LIMIT + 1))
    message = refusal(path)
    assert str(path) in message and "1,048,577 bytes" in message and "1 MiB" in message


def test_an_empty_file_reads_as_nothing(tmp_path):
    path = tmp_path / "empty.json"
    path.touch()
    assert read_user_file(path, LIMIT) == b""


def test_dev_zero_is_refused_without_reading():
    message = refusal("/dev/zero")
    assert message == "cannot read /dev/zero: it is a character device, not a regular file"


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    message = refusal(fifo)
    assert str(fifo) in message and "named pipe (FIFO)" in message


def test_a_directory_is_refused(tmp_path):
    assert refusal(tmp_path) == f"cannot read {tmp_path}: it is a directory, not a regular file"


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert "a socket, not a regular file" in refusal(path)


def test_a_symlink_to_a_file_is_followed_and_one_to_a_device_is_refused(tmp_path):
    target = tmp_path / "blob"
    target.write_bytes(b"{}")
    (tmp_path / "config.json").symlink_to(target)
    assert read_user_file(tmp_path / "config.json", LIMIT) == b"{}"
    (tmp_path / "zero").symlink_to("/dev/zero")
    assert "character device" in refusal(tmp_path / "zero")


def test_a_missing_path_says_so(tmp_path):
    path = tmp_path / "nowhere" / "config.json"
    assert refusal(path) == f"cannot read {path}: No such file or directory"


@pytest.mark.parametrize("path", ["", "con\x00fig.json"])
def test_names_that_cannot_be_files_are_refused(path):
    assert refusal(path).startswith("cannot read ")


def test_st_size_is_not_trusted():
    """/proc files report st_size 0 yet hold bytes: they are read, and held to the limit."""
    assert os.stat("/proc/self/status").st_size == 0
    assert b"Name:" in read_user_file("/proc/self/status", LIMIT)
    assert "is more than 10 bytes; the limit is 10 bytes" in refusal("/proc/self/status", limit=10)


def test_reads_stop_one_byte_past_the_limit(tmp_path, monkeypatch):
    """A file far over the limit whose size the file system under-reports costs limit + 1 bytes of reads."""
    path = tmp_path / "huge"
    path.write_bytes(b"x" * (5 * CHUNK_BYTES))
    asked: list[int] = []
    real_read, real_fstat = os.read, os.fstat

    def counting_read(descriptor, size):
        asked.append(size)
        return real_read(descriptor, size)

    def zero_size(descriptor):
        status = real_fstat(descriptor)
        return os.stat_result((*status[:6], 0, *status[7:]))

    monkeypatch.setattr(os, "read", counting_read)
    monkeypatch.setattr(os, "fstat", zero_size)
    refusal(path, limit=CHUNK_BYTES + 10)
    assert sum(asked) == CHUNK_BYTES + 11
    assert max(asked) <= CHUNK_BYTES


def test_the_caller_chooses_the_exception_class(tmp_path):
    class ConfigProblem(ValueError):
        pass

    with pytest.raises(ConfigProblem, match="cannot read /dev/zero"):
        read_user_file("/dev/zero", LIMIT, error=ConfigProblem)
    with pytest.raises(ConfigProblem, match="No such file"):
        read_user_file(tmp_path / "missing", LIMIT, error=ConfigProblem)


def test_no_descriptor_is_left_open(tmp_path):
    good = tmp_path / "good"
    good.write_bytes(b"{}")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 100)
    before = open_descriptors()
    for path, limit in ((good, LIMIT), (big, 10), ("/proc/self/status", 10), (tmp_path, LIMIT), ("/dev/zero", LIMIT)):
        try:
            read_user_file(path, limit)
        except FileReadError:
            pass
    assert open_descriptors() == before


def test_file_read_error_is_a_value_error():
    assert issubclass(FileReadError, ValueError)


@pytest.mark.parametrize(
    ("size_bytes", "label"), [(2**20, "1 MiB"), (64 * 2**10, "64 KiB"), (1536, "1.5 KiB"), (500, "500 bytes"), (2**30, "1 GiB")]
)
def test_size_label(size_bytes, label):
    assert size_label(size_bytes) == label


def test_path_objects_and_strings_name_the_file_alike(tmp_path):
    missing = tmp_path / "missing.json"
    assert refusal(missing) == refusal(str(missing)) == refusal(Path(str(missing)))
