"""Build hook for the optional C codec (shadowstream.schemas._cavro); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and the
codec falls back to generated Python (shadowstream/schemas/fastcodec.py), ~3-6x slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "shadowstream.schemas._cavro",
            sources=["shadowstream/schemas/_cavro.c"],
            extra_compile_args=["-O2", "-Wall", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
