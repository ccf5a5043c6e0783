"""The poem corpus: find, list and load the public-domain poems that the servers serve.

Poems live in ``poems/`` at the top of the repository (``poetrylab/poems`` points there,
and a built wheel carries a copy), one UTF-8 ``NAME.txt`` file each. Notebook 00 lists
them; every server takes a poem by corpus name or by file path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Poem", "UnknownPoemError", "corpus_dir", "list_poems", "load_poem"]


class UnknownPoemError(LookupError):
    """A poem name that is neither in the corpus nor a readable file."""


@dataclass(frozen=True)
class Poem:
    """One poem: its corpus name (or file stem), where it was read from, and its bytes."""

    name: str
    path: Path
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


def corpus_dir() -> Path:
    """Return the directory holding the corpus (inside the package, or the repository)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "poems", here.parent / "poems"):
        if candidate.is_dir() and any(candidate.glob("*.txt")):
            return candidate
    raise FileNotFoundError(
        f"the poem corpus is missing: looked in {here / 'poems'} and {here.parent / 'poems'}; "
        "reinstall poetrylab (pip install -e .)"
    )


def list_poems() -> list[str]:
    """Return the corpus names, sorted."""
    return sorted(p.stem for p in corpus_dir().glob("*.txt"))


def load_poem(name_or_path: str | Path) -> Poem:
    """Load a poem by corpus name (``"raven"``) or by the path of a UTF-8 text file.

    Raises :class:`UnknownPoemError`, naming the corpus, when it is neither.
    """
    text = str(name_or_path)
    path = corpus_dir() / f"{text}.txt"
    if not path.is_file():
        path = Path(text).expanduser()
    if not path.is_file():
        raise UnknownPoemError(
            f"no poem called {text!r}: use a corpus name ({', '.join(list_poems())}) "
            "or the path of a text file"
        )
    return Poem(name=path.stem, path=path, data=path.read_bytes())
