"""Checks of every argument before it reaches ctypes.

ctypes converts silently (an int beyond 32 bits wraps, a str is iterable, an
int passed where a char * is expected is read as an address), so each value
is checked here and turned into exactly what the C field holds. Failures are
ArgTypeError / ArgValueError: a TypeError / ValueError that is also a
ddps.Error of category "usage", with a message naming the argument.
"""
import ctypes
import math
import numbers
import os

import numpy as np

from ._lib import lib

INT_MIN, INT_MAX = -2 ** 31, 2 ** 31 - 1


class Error(Exception):
    """A failed ddps call: str(e) is the library's message; e.category one of
    "usage", "data", "resource", "cancelled", "failure"; e.status the number."""

    def __init__(self, status, message):
        self.status = int(status)
        self.category = lib.ddps_status_name(self.status).decode()
        self.message = message
        super().__init__(message)


class ArgTypeError(Error, TypeError):
    """An argument of the wrong type (category "usage")."""

    def __init__(self, message):
        super().__init__(2, message)


class ArgValueError(Error, ValueError):
    """An argument out of range (category "usage")."""

    def __init__(self, message):
        super().__init__(2, message)


def _fail(kind, name, what):
    raise kind("%s: %s" % (name, what))


def integer(name, v, lo=INT_MIN, hi=INT_MAX):
    """An int or a numpy integer (not a bool) within lo..hi, as a Python int."""
    te, ve = ArgTypeError, ArgValueError
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, np.integer)):
        _fail(te, name, "expected an integer, got %s %r" % (type(v).__name__, v))
    v = int(v)
    if not lo <= v <= hi:
        _fail(ve, name, "%d is outside %d..%d" % (v, lo, hi))
    return v


def real(name, v):
    """A finite int or float (numpy ones too, not a bool), as a Python float."""
    te, ve = ArgTypeError, ArgValueError
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
        _fail(te, name, "expected a number, got %s %r" % (type(v).__name__, v))
    v = float(v)
    if not math.isfinite(v):
        _fail(ve, name, "%r is not finite" % v)
    return v


def text(name, v):
    """A str (UTF-8 encoded) or bytes without NUL, as bytes."""
    te, ve = ArgTypeError, ArgValueError
    if isinstance(v, str):
        v = v.encode("utf-8", "surrogateescape")
    elif not isinstance(v, bytes):
        _fail(te, name, "expected a str, got %s %r" % (type(v).__name__, v))
    if b"\0" in v:
        _fail(ve, name, "contains a NUL character")
    return v


def path(name, v):
    """A str, bytes or os.PathLike file name without NUL, as bytes."""
    te = ArgTypeError
    if not isinstance(v, (str, bytes, os.PathLike)):
        _fail(te, name, "expected a path (str or os.PathLike), got %s %r" % (type(v).__name__, v))
    return text(name, os.fsencode(v))


def sequence(name, v):
    """A list, tuple or other iterable that is not a str or bytes, as a list."""
    te = ArgTypeError
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        _fail(te, name, "expected a list, got %s %r" % (type(v).__name__, v))
    return list(v)


def ints(name, v, lo=1, hi=INT_MAX):
    """One integer or a non-empty list of them, as a list."""
    if isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return [integer(name, v, lo, hi)]
    v = sequence(name, v)
    if not v:
        _fail(ArgValueError, name, "is empty")
    return [integer("%s[%d]" % (name, i), x, lo, hi) for i, x in enumerate(v)]


def names(name, v):
    """A list of str (a single str is refused: it would be read letter by letter)."""
    v = sequence(name, v)
    return [text("%s[%d]" % (name, i), x) for i, x in enumerate(v)]


def field(name, ctype, v):
    """v checked for a ctypes struct field of type ctype."""
    if ctype is ctypes.c_int:
        return integer(name, v)
    if ctype is ctypes.c_uint64:
        return integer(name, v, 0, 2 ** 64 - 1)
    if ctype is ctypes.c_double:
        return real(name, v)
    if ctype is ctypes.c_char_p:
        return None if v is None else text(name, v)
    raise AssertionError("no check for %s of type %s" % (name, ctype))


def image(name, im):
    """An (H, W, 3) uint8 array, C-contiguous. Float pixels are refused (a
    cast would turn [0, 1] into a black image); so are other types."""
    te, ve = ArgTypeError, ArgValueError
    if not isinstance(im, np.ndarray):
        _fail(te, name, "expected a numpy array (H, W, 3) of uint8, got %s" % type(im).__name__)
    if im.dtype != np.uint8:
        hint = " (floats in [0, 1]: (x * 255).round().astype(np.uint8))" if im.dtype.kind == "f" else ""
        _fail(te, name, "dtype %s: expected uint8 pixels 0..255%s" % (im.dtype, hint))
    if im.ndim != 3 or im.shape[2] != 3 or im.shape[0] < 1 or im.shape[1] < 1:
        _fail(ve, name, "shape %s: expected (H, W, 3) with H, W >= 1" % (im.shape,))
    if im.shape[0] > INT_MAX or im.shape[1] > INT_MAX:
        _fail(ve, name, "shape %s is too large" % (im.shape,))
    return np.ascontiguousarray(im)
