"""The golden references live in the package (tinyc/validate/reference.py); tests import them here."""

from tinyc.validate.reference import *  # noqa: F401,F403
from tinyc.validate.reference import (ReferenceCrashed, ReferenceFailed, ReferenceRunError,  # noqa: F401
                                      ReferenceTimeout, model_io_specs, run_litert_ref, run_many, run_tflm,
                                      tflm_arena_bytes, tflm_arena_stats)
