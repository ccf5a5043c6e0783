"""The poem corpus: list and load the public-domain poems that the servers serve.

The poems are package data, one UTF-8 ``NAME.txt`` file each in ``poetrylab/poems/``
(``poems/`` at the top of the repository is a link to that directory, for readers), and
are read with :mod:`importlib.resources`, so they load the same way from a checkout, an
editable install, a wheel or Binder. Notebook 00 lists them; every server takes a poem
by corpus name or by file path.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["Poem", "UnknownPoemError", "corpus_files", "list_poems", "load_poem"]


class UnknownPoemError(LookupError):
    """A poem name that is neither in the corpus nor a readable file."""


@dataclass(frozen=True)
class Poem:
    """One poem: its corpus name (or file stem), where it was read from, and its bytes.

    ``path`` is the file the poem was read from, or None when the corpus is installed
    somewhere that is not a directory on disk (a zipped package).
    """

    name: str
    path: Path | None
    data: bytes

    @property
    def text(self) -> str:
        """The poem decoded from UTF-8."""
        return self.data.decode("utf-8")

    @property
    def title(self) -> str:
        """The poem's first line, stripped: good enough to tell poems apart in a listing."""
        first = self.text.strip().splitlines()[0] if self.data.strip() else ""
        return first.strip()

    def __len__(self) -> int:
        return len(self.data)


def corpus_files() -> Traversable:
    """Return the installed corpus directory (``poetrylab/poems``) as a resource Traversable.

    Raises FileNotFoundError, saying how to repair the install, when it holds no poem.
    """
    corpus = files("poetrylab").joinpath("poems")
    if not corpus.is_dir() or not any(_is_poem(entry) for entry in corpus.iterdir()):
        raise FileNotFoundError(
            f"the poem corpus is missing from the installed package ({corpus}): "
            "reinstall poetrylab (pip install -e . from the repository, or make install)"
        )
    return corpus


def _is_poem(entry: Traversable) -> bool:
    return entry.name.endswith(".txt") and entry.is_file()


def list_poems() -> list[str]:
    """Return the corpus names, sorted."""
    names = (e.name.removesuffix(".txt") for e in corpus_files().iterdir() if _is_poem(e))
    return sorted(names)


def load_poem(name_or_path: str | Path) -> Poem:
    """Load a poem by corpus name (``"raven"``) or by the path of a UTF-8 text file.

    A corpus name wins over a file of the same name in the current directory. Raises
    :class:`UnknownPoemError`, naming the corpus, when it is neither.
    """
    text = str(name_or_path)
    resource = corpus_files().joinpath(f"{text}.txt")
    if "/" not in text and "\\" not in text and resource.is_file():
        path = resource if isinstance(resource, Path) else None
        return Poem(name=text, path=path, data=resource.read_bytes())
    file = Path(text).expanduser()
    if not file.is_file():
        raise UnknownPoemError(
            f"no poem called {text!r}: use a corpus name ({', '.join(list_poems())}) "
            "or the path of a text file"
        )
    return Poem(name=file.stem, path=file, data=file.read_bytes())
