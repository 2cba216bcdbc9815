#!/usr/bin/env python3
"""PSNR and SSIM of two raw little-endian float64 images with scikit-image, printed as JSON.

Usage: skimage_compare.py A.f64 B.f64 HEIGHT WIDTH CHANNELS DATA_RANGE
Used by tests/eval_image_metrics.rs to check gs_livo's metrics against scikit-image.
"""
import json
import sys

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def main():
    a_path, b_path, h, w, c, data_range = sys.argv[1:7]
    h, w, c, data_range = int(h), int(w), int(c), float(data_range)
    shape = (h, w, c) if c > 1 else (h, w)
    a = np.fromfile(a_path, dtype="<f8").reshape(shape)
    b = np.fromfile(b_path, dtype="<f8").reshape(shape)
    psnr = peak_signal_noise_ratio(a, b, data_range=data_range)
    ssim = structural_similarity(
        a, b, data_range=data_range, channel_axis=2 if c > 1 else None,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )
    print(json.dumps({"psnr": float(psnr), "ssim": float(ssim)}))


if __name__ == "__main__":
    main()
