"""The exception classes of fmf.utils (see fmf/__init__.py)."""


class GeneralError(Exception):
    """Any fmf error."""


class FormatError(GeneralError):
    """Invalid metadata format."""


class FileError(GeneralError):
    """A file could not be read."""


class RootError(FileError):
    """No tree root (.fmf/version) was found."""


class FetchError(GeneralError):
    """A remote tree could not be fetched."""


class FilterError(GeneralError):
    """An invalid filter."""


class MergeError(GeneralError):
    """An invalid merge suffix."""
