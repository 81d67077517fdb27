"""Output folders made before the work that fills them, with an error that names what stands in the way, and output
files written whole or not at all."""

import itertools
import os
import tempfile


def make_folder(folder):
    """Create `folder` and its parents; NotADirectoryError when a file stands where a folder must be (os.makedirs
    said only "[Errno 17] File exists"), PermissionError when no file can be written in it."""
    folder = os.path.abspath(os.fspath(folder))
    existing = folder
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "a file" if os.path.exists(existing) else "a link to nothing"
        raise NotADirectoryError(f"{existing} is {what}, not a folder: {folder} cannot be made")
    os.makedirs(folder, exist_ok=True)
    return check_writable(folder)


def check_writable(folder):
    """`folder`, or PermissionError when no file can be written in it: a file is written there to see, not
    os.access, which root passes on a read-only mount or in /proc."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise PermissionError(f"{folder}: cannot write in it ({exc.strerror or exc})") from None
    return folder


def make_parent(path):
    """make_folder for the folder that will hold the file `path`."""
    return make_folder(os.path.dirname(os.path.abspath(os.fspath(path))))


def image_path(path, flag):
    """The image file an option names: '.png' added when it names no format; a folder, or a format matplotlib cannot
    write, refused now rather than after the work ("adir/" became the hidden file adir/.png.png)."""
    from matplotlib.figure import Figure

    if path.endswith(os.sep) or os.path.isdir(path):
        example = os.path.join(path, flag.lstrip("-") + ".png")
        raise ValueError(f"{flag} {path} is a folder; give a file in it ({example})")
    ext = os.path.splitext(path)[1][1:].lower()
    if not ext:
        return path + ".png"
    if ext not in Figure().canvas.get_supported_filetypes():
        raise ValueError(f"{flag} {path}: matplotlib cannot write .{ext} images; give a .png file")
    return path


_TEMPORARY = itertools.count()


def write_text_atomic(path, text):
    """Write `path` whole or not at all: a temporary file beside it, of a name of its own (two processes writing one
    output mixed their texts in a shared `path.tmp`, and a name near the 255-byte limit had no room for `.tmp`), is
    synced and then replaces `path`, so readers never see it half-written."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    short = os.fsdecode(os.fsencode(name)[:64])  # bytes: 64 characters of 4 bytes each had no room either
    tmp = os.path.join(folder, f".{short}.{os.getpid()}-{next(_TEMPORARY)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.isfile(tmp):
            os.remove(tmp)
        raise
