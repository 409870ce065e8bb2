"""PTQ calibration: calibrators (max / percentile / entropy / mse), the hash-keyed calibration cache, and the
choice of calibration images (training split only)."""
from .cache import CacheKey, CacheMismatchError, data_digest, load_cache, model_digest, plan_digest, save_cache
from .calibrators import (UncalibratedError, apply_amax, calibrate, check_calibrated, collect_amax, insert_quantizers,
                          iter_quantizers)
from .sampling import calibration_subset

__all__ = ["CacheKey", "CacheMismatchError", "UncalibratedError", "apply_amax", "calibrate", "calibration_subset",
           "check_calibrated", "collect_amax", "data_digest", "insert_quantizers", "iter_quantizers", "load_cache",
           "model_digest", "plan_digest", "save_cache"]
