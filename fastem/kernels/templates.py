"""Kernels compiled per layout: the template machinery, for any kernel module.

A *template* is a plain function named ``_t_<name>`` that reads
compile-time constants (``LAYOUT``, ...) and calls other templates by their
``_t_`` names.  :func:`specialize` makes, for each *variant* (a name and the
globals it overrides), one numba dispatcher per template whose globals hold
that variant's constants and that variant's dispatchers of the other
templates; numba reads globals as compile-time constants and prunes the
other variants' branches, so a user of one variant compiles that one only.
The dispatchers are created, not compiled (compilation is lazy), and each
has its own qualified name, so numba's disk cache keeps one entry per
variant.  See CONTRIBUTING, "Kernels compiled per layout", for the rules of
writing a template.

:mod:`fastem.kernels.hmm` uses this; :mod:`fastem.kernels.gaussian` has the
same machinery written out for its own globals (its ``_specialize``), which
:func:`specialize` reproduces with ``variants = [(f"{layout}{suffix}",
{"LAYOUT": code, "SQUARE": ..., "QUAD": quad, **base[code]})]`` and
``only``.
"""

import types

from numba import njit

__all__ = ["layout_template", "specialize"]


def layout_template(registry, options):
    """Return a decorator registering a ``_t_`` template in ``registry``.

    Parameters
    ----------
    registry : list
        The module's list of ``(template, numba options)``.
    options : dict
        The numba options the template is compiled with.

    Returns
    -------
    callable
        The decorator (it returns the template unchanged).
    """
    def register(fn):
        registry.append((fn, options))
        return fn
    return register


def specialize(registry, module_globals, variants, only=None):
    """Create every template's dispatcher for each variant (compile nothing).

    Parameters
    ----------
    registry : list of (function, dict)
        The templates and their numba options (:func:`layout_template`).
    module_globals : dict
        The globals the templates were written against (their module's).
    variants : iterable of (str, dict, dict)
        ``(name, overrides, replacements)``: the dispatchers are named
        ``_<template name without _t_>_<name>``; ``overrides`` are globals
        of this variant (constants, other modules' dispatchers under their
        template names); ``replacements`` maps a template to the function
        whose code this variant compiles in its place (same signature).
    only : set of str, optional
        Create only these templates; the others must be in ``overrides``
        (for instance another variant's dispatchers, shared).

    Returns
    -------
    list of dict
        Per variant, template name -> that variant's dispatcher.
    """
    out = []
    for vname, overrides, replacements in variants:
        g = dict(module_globals)
        g.update(overrides)
        for tmpl, options in registry:
            if only is not None and tmpl.__name__ not in only:
                continue
            src = replacements.get(tmpl, tmpl)
            name = f"{tmpl.__name__[2:]}_{vname}"
            fn = types.FunctionType(src.__code__, g, name, src.__defaults__,
                                    src.__closure__)
            # the qualified name names the disk-cache files: one per variant
            fn.__qualname__ = name
            fn.__doc__ = tmpl.__doc__
            g[tmpl.__name__] = njit(**options)(fn)
        out.append({tmpl.__name__: g[tmpl.__name__] for tmpl, _ in registry})
    return out
