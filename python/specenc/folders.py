"""Output folders made before the work that fills them, with an error that names what stands in the way."""

import os


def make_folder(folder):
    """Create `folder` and its parents; NotADirectoryError when a file stands where a folder must be (os.makedirs
    said only "[Errno 17] File exists"), PermissionError when it cannot be written."""
    folder = os.path.abspath(os.fspath(folder))
    existing = folder
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "a file" if os.path.exists(existing) else "a link to nothing"
        raise NotADirectoryError(f"{existing} is {what}, not a folder: {folder} cannot be made")
    os.makedirs(folder, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{folder}: no permission to write in it")
    return folder


def make_parent(path):
    """make_folder for the folder that will hold the file `path`."""
    return make_folder(os.path.dirname(os.path.abspath(os.fspath(path))))
