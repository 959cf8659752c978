"""Tests run in float64 with strict dtype promotion: closed forms are compared at tight tolerances,
and any silent float32/float64 mix in the library is an error."""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
